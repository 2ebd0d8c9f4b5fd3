//go:build !embedui

package frontend

import (
	"embed"
	"io/fs"
)

// placeholder is served by binaries built without the web client.
//
//go:embed placeholder/index.html
var placeholder embed.FS

func assets() (fs.FS, bool) {
	sub, err := fs.Sub(placeholder, "placeholder")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub, false
}
