// Command pricewatch is an example of using the gpux Go client from another
// module: it prints a market's spot price next to the cheapest cloud
// on-demand rate, then follows its trades live until interrupted.
//
//	go run .  -url http://localhost:8080 -market h100-sxm.us-east
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/gpux/gpux/client"
)

func main() {
	url := flag.String("url", "http://localhost:8080", "gpux server")
	market := flag.String("market", "h100-sxm.us-east", "market to watch")
	trades := flag.Int("trades", 0, "stop after this many trades (0 = never)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, client.New(*url, client.WithRetry(client.DefaultRetry)), *market, *trades); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, c *client.Client, market string, trades int) error {
	rows, err := c.Prices(ctx)
	if err != nil {
		return fmt.Errorf("prices: %w", err)
	}
	for _, r := range rows {
		if r.Market != market {
			continue
		}
		spot := "none"
		if r.SpotPrice != nil {
			spot = *r.SpotPrice
		}
		fmt.Printf("%s spot %s\n", market, spot)
		for provider, d := range r.DiscountVsReference {
			if d != nil {
				fmt.Printf("  %s on-demand discount %s\n", provider, *d)
			}
		}
		for _, p := range r.ForwardCurve {
			fmt.Printf("  forward %s/%s best ask %v\n", p.Tenor, p.Duration, deref(p.BestAsk))
		}
	}
	// Stream resubscribes on a sequence gap, so what follows is in order,
	// and dials again (up to 5 times in a row) if the connection drops.
	s, err := c.Stream(ctx, []string{"trades:" + market}, client.WithRedial(5))
	if err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	defer s.Close()
	for n := 0; trades == 0 || n < trades; {
		m, err := s.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if m.Type != client.MsgUpdate {
			continue
		}
		var t client.Trade
		if err := m.Decode(&t); err != nil {
			return err
		}
		fmt.Printf("trade %d GPUs at %s for %s → %s\n", t.Quantity, t.Price, t.Start.Format("Jan 2 15:04"), t.End.Format("Jan 2 15:04"))
		n++
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return "-"
	}
	return *p
}
