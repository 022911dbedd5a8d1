package api_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpux/gpux/api"
	"github.com/gpux/gpux/client"
)

func gzipped(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func deflated(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestEncodedBodyLimit: the 1 MiB body limit holds for the decoded bytes,
// and only the encodings the server decodes itself (bounded) are accepted.
// Before the fix Fiber's c.Body() unpacked any gzip, deflate or br body
// without a bound: the "gzip bomb" rows answered 201 and 400 instead of 413.
func TestEncodedBodyLimit(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.account("owner", "", client.RoleOwner)
	buyer := e.account("buyer", "1000.00", client.RoleBuyer)
	bid := []byte(`{"type":"spot","market":"h100-sxm.us-east","quantity":1,"limit_price":"1.00"}`)
	// A valid bid followed by whitespace: valid JSON of any size.
	padded := func(n int) []byte {
		return append(append([]byte(nil), bid...), bytes.Repeat([]byte{' '}, n-len(bid))...)
	}
	bomb := gzipped(t, padded(16<<20)) // 16 MiB decoded from about 16 KB

	tests := []struct {
		name     string
		encoding []string // Content-Encoding header values
		body     []byte
		status   int
		code     string
	}{
		{"gzip under the limit", []string{"gzip"}, gzipped(t, padded(api.BodyLimit)), 201, ""},
		{"deflate", []string{"deflate"}, deflated(t, bid), 201, ""},
		{"identity", []string{"identity"}, bid, 201, ""},
		{"gzip one byte over", []string{"gzip"}, gzipped(t, padded(api.BodyLimit+1)), 413, "body_too_large"},
		{"gzip bomb", []string{"gzip"}, bomb, 413, "body_too_large"},
		{"x-gzip bomb", []string{"x-gzip"}, bomb, 413, "body_too_large"},
		{"deflate bomb", []string{"deflate"}, deflated(t, padded(8<<20)), 413, "body_too_large"},
		{"br", []string{"br"}, []byte{0x1b, 0x00, 0x00}, 415, "unsupported_media_type"},
		{"zstd", []string{"zstd"}, bid, 415, "unsupported_media_type"},
		{"chain", []string{"gzip, gzip"}, gzipped(t, gzipped(t, bid)), 415, "unsupported_media_type"},
		{"two headers", []string{"gzip", "gzip"}, gzipped(t, gzipped(t, bid)), 415, "unsupported_media_type"},
		{"not gzip", []string{"gzip"}, bid, 400, "invalid_content_encoding"},
		{"truncated gzip", []string{"gzip"}, gzipped(t, bid)[:20], 400, "invalid_content_encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, e, buyer, owner)
			req, err := http.NewRequest(http.MethodPost, e.url+"/v1/bids", bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+buyer.key)
			req.Header.Set("Content-Type", "application/json")
			for _, v := range tt.encoding {
				req.Header.Add("Content-Encoding", v)
			}
			status, hdr, body := do(t, req)
			if tt.code == "" {
				if status != tt.status {
					t.Fatalf("status: got %d, want %d (%s)", status, tt.status, body)
				}
				return
			}
			wantProblem(t, status, hdr, body, tt.status, tt.code, "-")
			if after := snapshot(t, e, buyer, owner); !reflect.DeepEqual(before, after) {
				t.Errorf("state changed:\nbefore %s\nafter  %s", dump(before), dump(after))
			}
		})
	}
}

// TestHeaderLimit: the request line (query string included) and headers
// must fit in api.HeaderLimit; beyond it the answer is a 431 problem.
func TestHeaderLimit(t *testing.T) {
	e := newEnv(t, nil)
	buyer := e.account("buyer", "", client.RoleBuyer)
	big := strings.Repeat("a", api.HeaderLimit)
	tests := []struct {
		name, path string
		hdr        []string
		status     int
	}{
		{"small", "/v1/bids?limit=10", nil, 200},
		{"long query", "/v1/bids?cursor=" + big, nil, 431},
		{"long header", "/v1/bids", []string{"X-Padding", big}, 431},
		{"many headers", "/v1/bids", manyHeaders(400), 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := rawHead(t, e.url, tt.path, buyer.key, tt.hdr...)
			if status == 0 {
				return // reset after the 431 status line; rawHead logged it
			}
			if tt.status == 200 {
				if status != 200 {
					t.Fatalf("status: got %d, want 200 (%s)", status, body)
				}
				return
			}
			wantProblem(t, status, hdr, body, tt.status, "header_too_large", "")
		})
	}
}

// rawHead sends a GET whose whole head goes out in one write, with no body
// to wait on, and reads the answer from the connection itself. The server
// answers an oversized head with 431 and closes the connection with the
// rest of the head unread, which makes the kernel reset it; net/http can
// then report the reset of its own write instead of the answer it got. A
// reset is accepted only once the 431 status line is in (status 0 is
// returned then); anything else without a whole answer fails the test.
func rawHead(tb testing.TB, baseURL, path, key string, hdr ...string) (int, http.Header, []byte) {
	tb.Helper()
	var head strings.Builder
	head.WriteString("GET " + path + " HTTP/1.1\r\nHost: gpux.test\r\nAuthorization: Bearer " + key + "\r\n")
	for i := 0; i+1 < len(hdr); i += 2 {
		head.WriteString(hdr[i] + ": " + hdr[i+1] + "\r\n")
	}
	head.WriteString("\r\n")
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(feedWait))
	_, werr := conn.Write([]byte(head.String())) // a reset here still leaves the answer to read
	var got bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &got)), nil)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) && strings.HasPrefix(got.String(), "HTTP/1.1 431 ") {
			tb.Logf("connection reset after the 431 status line (%d bytes read)", got.Len())
			return 0, nil, nil
		}
		tb.Fatalf("GET %.40s: read %q: %v (write: %v)", path, got.Bytes(), err, werr)
	}
	return resp.StatusCode, resp.Header, body
}

func manyHeaders(n int) []string {
	var h []string
	for i := range n {
		h = append(h, "X-H"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26%26)), "0123456789")
	}
	return h
}

func do(tb testing.TB, req *http.Request) (int, http.Header, []byte) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, buf.Bytes()
}
