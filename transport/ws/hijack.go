package ws

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"

	"chatd/transport/httperr"
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
//
// A handshake the library refuses (no Upgrade headers, a method other than
// GET, a bad version or key) is answered with the API's JSON error shape
// (WriteHeader), not the library's plain text.
type smallReadBuffer struct {
	http.ResponseWriter
	cork    *corkConn
	refused bool // WriteHeader answered a refused handshake: the library's text is dropped
}

// WriteHeader passes on the 101 of an accepted handshake, and answers a
// refused one with httperr's JSON, with the library's status and headers
// (Upgrade: websocket for a 426, Sec-WebSocket-Version for a bad version).
func (w *smallReadBuffer) WriteHeader(code int) {
	if code == http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.refused = true
	httperr.Write(w.ResponseWriter, handshakeError(code))
}

// Write drops the library's plain-text message once WriteHeader answered a
// refused handshake.
func (w *smallReadBuffer) Write(p []byte) (int, error) {
	if w.refused {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// upgradeRequired answers a request that asks no upgrade as the library
// does (426, Connection: Upgrade, Upgrade: websocket), with the JSON error
// WriteHeader gives it: what a HEAD gets, which can upgrade nothing.
func upgradeRequired(w http.ResponseWriter) {
	w.Header().Set("Connection", "Upgrade")
	w.Header().Set("Upgrade", "websocket")
	httperr.Write(w, handshakeError(http.StatusUpgradeRequired))
}

// handshakeError is the error a handshake refused with status answers.
func handshakeError(status int) *httperr.Error {
	switch status {
	case http.StatusUpgradeRequired:
		return httperr.New(status, httperr.CodeBadRequest,
			"this route takes a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket, HTTP/1.1)")
	case http.StatusMethodNotAllowed:
		return httperr.New(status, httperr.CodeMethodNotAllowed, "a WebSocket upgrade is a GET")
	case http.StatusBadRequest:
		return httperr.BadRequest("malformed WebSocket handshake (Sec-WebSocket-Version must be 13, with one valid Sec-WebSocket-Key)")
	case http.StatusForbidden:
		return httperr.Forbidden("origin not allowed")
	default:
		return httperr.New(status, httperr.CodeInternal, http.StatusText(status))
	}
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
