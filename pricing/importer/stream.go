package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// stream wraps a json.Decoder with the file name for errors.
type stream struct {
	name string
	dec  *json.Decoder
}

func newStream(name string, r io.Reader) *stream {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	return &stream{name: name, dec: dec}
}

// errorf says which file and where.
func (s *stream) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: at byte %d: %s", s.name, s.dec.InputOffset(), fmt.Sprintf(format, args...))
}

// wrap turns a decoder error into one naming the file and offset; a file
// that ends early says so.
func (s *stream) wrap(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return s.errorf("file ends early (truncated?)")
	}
	return s.errorf("malformed JSON: %v", err)
}

func (s *stream) token() (json.Token, error) {
	t, err := s.dec.Token()
	if err != nil {
		return nil, s.wrap(err)
	}
	return t, nil
}

// open reads the opening delimiter of an object ('{') or array ('[').
func (s *stream) open(d json.Delim, what string) error {
	t, err := s.token()
	if err != nil {
		return err
	}
	if t != d {
		return s.errorf("%s: want %q, got %v", what, d, t)
	}
	return nil
}

// object calls fn for each key of the object that starts next; fn must
// consume the key's value (decode or skip it).
func (s *stream) object(what string, fn func(key string) error) error {
	if err := s.open('{', what); err != nil {
		return err
	}
	for s.dec.More() {
		t, err := s.token()
		if err != nil {
			return err
		}
		key, ok := t.(string)
		if !ok {
			return s.errorf("%s: want a key, got %v", what, t)
		}
		if err := fn(key); err != nil {
			return err
		}
	}
	_, err := s.token() // '}'
	return err
}

// array calls fn for each element of the array that starts next; fn must
// consume the element.
func (s *stream) array(what string, fn func() error) error {
	if err := s.open('[', what); err != nil {
		return err
	}
	for s.dec.More() {
		if err := fn(); err != nil {
			return err
		}
	}
	_, err := s.token() // ']'
	return err
}

// decode reads the next value into v.
func (s *stream) decode(v any) error {
	if err := s.dec.Decode(v); err != nil {
		return s.wrap(err)
	}
	return nil
}

// skip reads past the next value, token by token: a skipped section
// (AWS's Reserved terms) is never held in memory.
func (s *stream) skip() error {
	depth := 0
	for {
		t, err := s.token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// end checks that nothing but white space follows the top-level value.
func (s *stream) end() error {
	if _, err := s.dec.Token(); err != io.EOF {
		if err != nil {
			return s.wrap(err)
		}
		return s.errorf("unexpected data after the top-level object")
	}
	return nil
}
