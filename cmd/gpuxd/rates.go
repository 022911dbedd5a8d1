package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gpux/gpux/pricing"
	"github.com/gpux/gpux/pricing/importer"
)

const ratesUsage = `usage:
  gpuxd rates import [--aws FILE]... [--azure FILE]... [--azure-fetched YYYY-MM-DD] [--gcp FILE]...
                     [--keep RATES.csv] [-o RATES.csv]
  gpuxd rates put --addr URL --admin-key KEY RATES.csv`

// runRates runs `gpuxd rates SUBCOMMAND`, returning the exit code: 0, 1
// for a failure, 2 for bad usage.
func runRates(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, ratesUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "import":
		err = ratesImport(args[1:], stdout, stderr)
	case "put":
		err = ratesPut(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "gpuxd rates: unknown subcommand %q\n%s\n", args[0], ratesUsage)
		return 2
	}
	var usage usageError
	switch {
	case errors.As(err, &usage), errors.Is(err, flag.ErrHelp):
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "gpuxd rates:", err)
		}
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "gpuxd rates:", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// files is a repeatable flag.
type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

// ratesImport reads the providers' price files and writes a rates file:
// to -o (through a temporary file and a rename, so a failed import leaves
// it untouched) or to stdout. --keep adds the rows of an existing rates
// file whose provider and price type the import has none of (CoreWeave,
// Lambda, AWS capacity blocks, ...).
func ratesImport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gpuxd rates import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var aws, azure, gcp files
	var out, keep, azureFetched string
	fs.Var(&aws, "aws", "AWS Price List bulk offer file of AmazonEC2 (JSON; repeat for per-region files)")
	fs.Var(&azure, "azure", "Azure Retail Prices API page (JSON; repeat for every page)")
	fs.Var(&gcp, "gcp", "Cloud Billing Catalog page of Compute Engine SKUs (JSON; repeat for every page)")
	fs.StringVar(&azureFetched, "azure-fetched", "", "YYYY-MM-DD the Azure pages were fetched: their as_of (default: each price's effectiveStartDate)")
	fs.StringVar(&keep, "keep", "", "rates file whose rows of providers and price types not imported are kept")
	fs.StringVar(&out, "o", "", "output rates file (default stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %v", fs.Args())}
	}
	if len(aws)+len(azure)+len(gcp) == 0 {
		return usageError{"give at least one of --aws, --azure, --gcp"}
	}
	var rows []importer.Row
	each := func(paths []string, read func(name string, r io.Reader) error) error {
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			err = read(filepath.Base(p), f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	err := errors.Join(
		each(aws, func(name string, r io.Reader) error {
			rs, err := importer.AWS(name, r)
			rows = append(rows, rs...)
			return err
		}),
		each(azure, func(name string, r io.Reader) error {
			rs, err := importer.Azure(name, r)
			if err == nil && azureFetched != "" {
				rs, err = importer.AzureFetched(rs, azureFetched)
			}
			rows = append(rows, rs...)
			return err
		}),
	)
	if err != nil {
		return err
	}
	var cat importer.GCPCatalog
	if err := each(gcp, cat.Read); err != nil {
		return err
	}
	rows = append(rows, cat.Rows()...)
	data, err := importer.Encode(rows)
	if err != nil {
		return err
	}
	if keep != "" {
		base, err := pricing.LoadFile(keep)
		if err != nil {
			return fmt.Errorf("--keep: %w", err)
		}
		if data, err = importer.Merge(data, base); err != nil {
			return err
		}
	}
	if out == "" {
		_, err = stdout.Write(data)
		return err
	}
	if err := importer.WriteFile(out, data); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "gpuxd rates: wrote %s (%d bytes)\n", out, len(data))
	return nil
}

// ratesPut replaces a running gpuxd's reference table (PUT
// /v1/admin/reference-rates). The file is checked here first, so a bad
// one is refused without a request.
func ratesPut(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gpuxd rates put", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "http://127.0.0.1:8080", "gpuxd base URL")
	key := fs.String("admin-key", os.Getenv("GPUX_ADMIN_KEY"), "admin API key (env GPUX_ADMIN_KEY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"give exactly one rates file"}
	}
	if *key == "" {
		return usageError{"--admin-key (or GPUX_ADMIN_KEY) is needed"}
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	if _, err := pricing.Load(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimSuffix(*addr, "/")+"/v1/admin/reference-rates", bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+*key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT reference rates: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	_, err = fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(body))
	return err
}
