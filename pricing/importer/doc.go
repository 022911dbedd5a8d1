// Package importer turns the cloud providers' own price files into a gpux
// rates file (the columns of pricing.Load), so an operator refreshes the
// reference table without editing CSV by hand:
//
//   - AWS: the Price List bulk offer file of Amazon EC2 (JSON);
//   - Azure: pages of the Retail Prices API (JSON, one or more files);
//   - Google Cloud: pages of the Cloud Billing Catalog's Compute Engine SKUs
//     (JSON, one or more files), whose GPU machine prices are composed from
//     GPU, vCPU, memory and bundled Local SSD SKUs.
//
// Every reader streams its input with encoding/json's token decoder and
// keeps only what maps to a GPU instance of the mapping tables in
// instances.go (documented in docs/PRICES.md): the AWS file for every
// region is gigabytes and is never held in memory. Prices are decimals
// (json.Number into shopspring/decimal), never floats.
//
// A file that is malformed, truncated or missing what it must have (AWS's
// publicationDate) fails the whole import with an error naming the file
// and the byte offset, and nothing is written. The package reads what it is
// given and writes only through WriteFile (a temporary file renamed over
// the target); it has no global state and reads no clock.
package importer
