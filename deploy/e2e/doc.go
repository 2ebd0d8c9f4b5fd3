// Package e2e is the deployment end-to-end test: it runs the repository's
// own nginx.conf (rendered for free local ports by deploy/render-nginx.sh)
// in front of the real chatd binary and the fake OpenAI server, and checks
// through nginx over TLS what production depends on: the 307 redirect, static
// files and their cache headers, security headers, the REST API, WebSocket
// and SSE streaming without buffering, idle WebSockets outliving nginx's read
// timeout, the Origin check, pm2 supervision (restart after kill -9, log
// files) and the front end in Chromium under the Content-Security-Policy.
//
// The package has only tests. They need nginx, Node.js with deploy/'s
// packages installed (npm ci --prefix deploy) and Chromium; a missing tool
// fails the test with the command that installs it. Run them with
//
//	go test -count=1 -v ./deploy/e2e
package e2e
