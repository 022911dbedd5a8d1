module github.com/gpux/gpux/examples/pricewatch

go 1.26.0

require github.com/gpux/gpux v0.0.0

require (
	github.com/andybalholm/brotli v1.1.0 // indirect
	github.com/fasthttp/websocket v1.5.8 // indirect
	github.com/klauspost/compress v1.20.1 // indirect
	github.com/savsgio/gotils v0.0.0-20240303185622-093b76447511 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	github.com/valyala/fasthttp v1.52.0 // indirect
	golang.org/x/net v0.59.0 // indirect
)

replace github.com/gpux/gpux => ../..
