package ws

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// readBufferSize is the read buffer a connection keeps for its life.
// net/http's is 4 KiB; client frames are small (a send's text, a
// subscribe), a larger one is read through in bigger pieces anyway, and an
// idle connection only waits: 1 KiB serves them all.
const readBufferSize = 1 << 10

// smallReadBuffer is the response writer websocket.Accept hijacks: it
// hands the library the connection with a read buffer of readBufferSize
// in place of the one net/http read the upgrade request with, which then
// goes with the request. The write buffer is net/http's (4 KiB: a frame up
// to that size is one write to the socket, or to cork's buffer). The
// library writes to the connection through cork, which Hijack sets.
type smallReadBuffer struct {
	http.ResponseWriter
	cork *corkConn
}

// Hijack takes over the connection. Bytes the client sent right after
// its upgrade request (its first frames) may already wait in net/http's
// buffer: they are moved into the new one, where Accept looks for them.
func (w *smallReadBuffer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	pending, _ := brw.Reader.Peek(brw.Reader.Buffered())
	pending = bytes.Clone(pending)
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pending), conn), max(readBufferSize, len(pending)))
	if len(pending) > 0 {
		// Only the pending bytes are read: the socket is not touched.
		if _, err := br.Peek(len(pending)); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	// The library writes through brw.Writer, which writes to the socket:
	// it is pointed at cork instead (nothing waits in it after the 101,
	// and a flush first makes sure).
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	w.cork = &corkConn{Conn: conn}
	brw.Writer.Reset(w.cork)
	return w.cork, bufio.NewReadWriter(br, brw.Writer), nil
}

// WriteHeaderNow passes on gin's: Accept calls it so that gin, which holds
// back the status line until a body or this call, sends the 101 before the
// hijack.
func (w *smallReadBuffer) WriteHeaderNow() {
	if g, ok := w.ResponseWriter.(interface{ WriteHeaderNow() }); ok {
		g.WriteHeaderNow()
	}
}

// Unwrap returns the wrapped response writer (http.ResponseController).
func (w *smallReadBuffer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
