package api

import (
	"bytes"
	"errors"
	"mime"
	"net/http"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/gpux/gpux/engine"
	"github.com/gpux/gpux/pricing"
)

// ratesPath is the admin resource holding the reference table.
const ratesPath = "/admin/reference-rates"

// rateRoutes registers the admin reference-rates endpoints under v1.
func (s *Server) rateRoutes(v1 fiber.Router) {
	v1.Get(ratesPath, s.getReferenceRates)
	v1.Put(ratesPath, s.putReferenceRates)
}

// referenceRatesJSON answers a table replacement.
type referenceRatesJSON struct {
	Rates       int    `json:"rates"`        // rows in the table now in force
	EngineRates int    `json:"engine_rates"` // on-demand rates (GPU × provider) pegs resolve against
	Hash        string `json:"hash"`         // hex SHA-256 of the table's canonical CSV
	Seq         uint64 `json:"seq"`          // the journaled command that set the engine's rates
}

// getReferenceRates answers the table in force as a canonical rates file
// (text/csv): what PUT takes back.
func (s *Server) getReferenceRates(c *fiber.Ctx) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	return c.Status(http.StatusOK).Send(s.referenceTable().Encode())
}

// putReferenceRates replaces the reference table with a rates file
// (text/csv, the columns of pricing.Load, at most pricing.MaxRates rows
// within the body limit). The table's on-demand rates go through the
// sequencer as a journaled set_reference_rates command; the new table is
// installed on the sequencer goroutine right after the engine applies it,
// before its events reach the prices feed, so the feed's next update
// already shows it. A file that does not load answers 422 with the line
// and column at fault and changes nothing.
func (s *Server) putReferenceRates(c *fiber.Ctx) error {
	if p := requireAdmin(c); p != nil {
		return p
	}
	if mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); err != nil || mt != "text/csv" {
		return problem(CodeUnsupportedMedia, "", "send the rates file as Content-Type: text/csv")
	}
	t, err := pricing.Load(bytes.NewReader(c.Body()))
	if err != nil {
		var le *pricing.LoadError
		if errors.As(err, &le) {
			return problem(CodeInvalidValue, "body", err.Error())
		}
		return problemf(CodeInvalidValue, "body", "rates file: %v", err)
	}
	want := t.EngineRates()
	installed := false
	out, p := s.submit(engine.Command{Kind: engine.CmdSetReferenceRates, Rates: want, RatesTable: t.Encode()}, func(e *engine.Engine, _ *engine.Command) {
		// Applied (not rejected) exactly when the engine now holds the
		// table's rates.
		if slices.Equal(e.ReferenceRates(), want) {
			s.installReferenceTable(t)
			installed = true
		}
	})
	if p != nil {
		return p
	}
	if !installed {
		return problem(CodeInternal, "", "the engine did not take the reference rates")
	}
	s.log.Info("reference rates replaced", "rates", t.Len(), "engine_rates", len(want), "hash", t.Hash(), "seq", out.Seq)
	return sendJSON(c, http.StatusOK, referenceRatesJSON{Rates: t.Len(), EngineRates: len(want), Hash: t.Hash(), Seq: out.Seq})
}
