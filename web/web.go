// Package web holds the exchange's dashboard: static files (HTML, one
// script, one style sheet and the vendored uPlot chart library) embedded
// in the binary, so gpuxd serves it at / with nothing to build.
//
// The page is a client of the public API only: it loads REST snapshots
// (/v1/prices, /v1/markets/{m}/book, trades, history) and then follows
// /v1/ws, resubscribing a channel when its seq skips. It needs no key and
// shows nothing private. This package holds no Go logic beyond the
// embedding and must not import any other gpux package.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS returns the dashboard's files with index.html at the root, for
// api.Config.Dashboard.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}
