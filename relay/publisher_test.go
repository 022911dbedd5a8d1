package relay

import (
	"encoding/json"
	"testing"

	"github.com/gpux/gpux/api"
)

// TestAppendBatch: a batch is JSON whatever the channel names hold, and
// carries the frames as they are.
func TestAppendBatch(t *testing.T) {
	msgs := []api.FeedMessage{
		{Channel: "book:h100-sxm.us-east", Seq: 7, Frame: []byte(`{"channel":"book:h100-sxm.us-east","type":"update","seq":7,"data":{},"ts":"x"}`)},
		{Channel: "odd \"name\"\x01é", Seq: 1 << 50, Frame: []byte(`{"a":1}`)},
	}
	for _, lost := range []bool{false, true} {
		b := appendBatch(nil, "n0de", 42, lost, msgs)
		var got struct {
			V    int    `json:"v"`
			Node string `json:"node"`
			N    uint64 `json:"n"`
			Lost bool   `json:"lost"`
			Msgs []struct {
				C string          `json:"c"`
				S uint64          `json:"s"`
				F json.RawMessage `json:"f"`
			} `json:"msgs"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("lost=%v: %v: %s", lost, err, b)
		}
		if got.V != 1 || got.Node != "n0de" || got.N != 42 || got.Lost != lost || len(got.Msgs) != 2 {
			t.Fatalf("lost=%v: got %+v", lost, got)
		}
		for i, m := range got.Msgs {
			if m.C != msgs[i].Channel || m.S != msgs[i].Seq || string(m.F) != string(msgs[i].Frame) {
				t.Errorf("message %d: got %q %d %s, want %q %d %s", i, m.C, m.S, m.F, msgs[i].Channel, msgs[i].Seq, msgs[i].Frame)
			}
		}
	}
}
