//go:build embedui

package frontend

import (
	"embed"
	"io/fs"
)

// dist is the Vite build; build the binary with -tags embedui after `npm run build`.
//
//go:embed all:dist
var dist embed.FS

func assets() (fs.FS, bool) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub, true
}
