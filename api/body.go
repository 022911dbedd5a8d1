package api

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Limits on what a client can make the server expand besides the body.
const (
	// HeaderLimit is fasthttp's read buffer: the request line (path and
	// query string) and every header together must fit in it (431 above).
	HeaderLimit = 8 << 10
)

// errBodyTooLarge reports a body whose decoded form passes BodyLimit.
var errBodyTooLarge = errors.New("decoded body over the limit")

// decodeBody is the /v1 middleware that undoes a request's
// Content-Encoding itself, so the 1 MiB limit holds for the decoded bytes.
//
// Fiber's c.Body() would otherwise decompress gzip, deflate and br bodies
// transparently and without any bound: fasthttp's limit only covers the
// bytes on the wire, and a 200 KB gzip body can unpack to 200 MB. Here a
// body is decoded through a reader that stops one byte past BodyLimit, the
// decoded bytes replace the request body and the Content-Encoding header
// is removed, so nothing downstream decodes again.
//
// Accepted: no encoding, identity, gzip (x-gzip) and deflate (zlib, as
// HTTP defines it), one at a time. Anything else (br, zstd, a chain of
// encodings) → 415 unsupported_media_type; a body that does not decode →
// 400 invalid_content_encoding; over the limit once decoded → 413.
func (s *Server) decodeBody(c *fiber.Ctx) error { return decodeBodyLimited(c) }

func decodeBodyLimited(c *fiber.Ctx) error {
	var codings []string
	// Every Content-Encoding header counts: two headers are a chain.
	c.Request().Header.VisitAll(func(k, v []byte) {
		if strings.EqualFold(string(k), fiber.HeaderContentEncoding) {
			for _, e := range strings.Split(string(v), ",") {
				if e = strings.ToLower(strings.TrimSpace(e)); e != "" && e != "identity" {
					codings = append(codings, e)
				}
			}
		}
	})
	if len(codings) == 0 {
		c.Request().Header.Del(fiber.HeaderContentEncoding)
		return c.Next()
	}
	if len(codings) > 1 {
		return problemf(CodeUnsupportedMedia, "Content-Encoding", "at most one Content-Encoding is accepted (gzip or deflate), got %q", truncate(strings.Join(codings, ", "), 64))
	}
	decoded, err := decodeLimited(codings[0], c.Request().Body(), BodyLimit)
	switch {
	case errors.Is(err, errUnsupportedEncoding):
		return problemf(CodeUnsupportedMedia, "Content-Encoding", "Content-Encoding %q is not accepted: use gzip, deflate or none", truncate(codings[0], 32))
	case errors.Is(err, errBodyTooLarge):
		return problemf(CodeBodyTooLarge, "", "the request body is over %d bytes once decoded", BodyLimit)
	case err != nil:
		return problemf(CodeInvalidEncoding, "Content-Encoding", "the body is not valid %s: %v", codings[0], err)
	}
	c.Request().Header.Del(fiber.HeaderContentEncoding)
	c.Request().SetBodyRaw(decoded)
	return c.Next()
}

var errUnsupportedEncoding = errors.New("unsupported content encoding")

// decodeLimited decodes raw by coding ("gzip", "x-gzip" or "deflate"),
// never holding more than limit+1 decoded bytes: past limit it stops and
// returns errBodyTooLarge.
func decodeLimited(coding string, raw []byte, limit int) ([]byte, error) {
	var r io.ReadCloser
	var err error
	switch coding {
	case "gzip", "x-gzip":
		r, err = gzip.NewReader(bytes.NewReader(raw))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(raw))
	default:
		return nil, errUnsupportedEncoding
	}
	if err != nil {
		return nil, fmt.Errorf("open %s body: %w", coding, err)
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("decode %s body: %w", coding, err)
	}
	if len(out) > limit {
		return nil, errBodyTooLarge
	}
	return out, nil
}
