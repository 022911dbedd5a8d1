package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Object is a closed order kept by the read side (a bid or listing that
// has left the engine). Kind ("bid", "listing") and ID name it; Owner,
// Status and Seq index it for lists; Data is opaque.
type Object struct {
	Kind   string
	ID     string
	Owner  string
	Status string
	Seq    uint64
	Data   []byte
}

// ObjectStore keeps closed objects forever (they are the exchange's
// history: a bid filled a month ago answers as it did then). Both
// ReadModels and MemoryReadModels implement it. Redis failures come back
// wrapping ErrUnavailable.
type ObjectStore interface {
	// PutObjects stores objs, replacing any with the same Kind and ID
	// (a replay stores the same bytes again).
	PutObjects(ctx context.Context, objs []Object) error

	// GetObject returns the object, or ok false when there is none.
	GetObject(ctx context.Context, kind, id string) (o Object, ok bool, err error)

	// ListObjects returns up to limit of owner's objects of kind with
	// Seq < before (0: no bound), newest first, only those with the given
	// status when status is not empty.
	ListObjects(ctx context.Context, kind, owner, status string, before uint64, limit int) ([]Object, error)
}

var (
	_ ObjectStore = (*ReadModels)(nil)
	_ ObjectStore = (*MemoryReadModels)(nil)
)

// Redis layout (under the shard's hash tag, so one transaction covers it):
//
//	gpux:{<shard>}:obj:<kind>:<id>                    hash: owner, status, seq, data
//	gpux:{<shard>}:objidx:<kind>:<owner>              sorted set of ids, score seq
//	gpux:{<shard>}:objidx:<kind>:<owner>:<status>     likewise, per status

// PutObjects stores objs in one transaction. See ObjectStore.PutObjects.
func (r *ReadModels) PutObjects(ctx context.Context, objs []Object) error {
	if len(objs) == 0 {
		return nil
	}
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, o := range objs {
			p.HSet(ctx, r.key("obj", o.Kind, o.ID), "owner", o.Owner, "status", o.Status, "seq", o.Seq, "data", o.Data)
			z := redis.Z{Score: float64(o.Seq), Member: o.ID}
			p.ZAdd(ctx, r.key("objidx", o.Kind, o.Owner), z)
			p.ZAdd(ctx, r.key("objidx", o.Kind, o.Owner, o.Status), z)
		}
		return nil
	})
	if err != nil {
		return wrapRedis(fmt.Sprintf("put %d objects", len(objs)), err)
	}
	return nil
}

// GetObject reads one object. See ObjectStore.GetObject.
func (r *ReadModels) GetObject(ctx context.Context, kind, id string) (Object, bool, error) {
	m, err := r.rdb.HGetAll(ctx, r.key("obj", kind, id)).Result()
	if err != nil {
		return Object{}, false, wrapRedis("get object "+kind+" "+id, err)
	}
	if len(m) == 0 {
		return Object{}, false, nil
	}
	seq, err := strconv.ParseUint(m["seq"], 10, 64)
	if err != nil {
		return Object{}, false, fmt.Errorf("get object %s %s: seq: %w", kind, id, err)
	}
	return Object{Kind: kind, ID: id, Owner: m["owner"], Status: m["status"], Seq: seq, Data: []byte(m["data"])}, true, nil
}

// ListObjects pages an owner's objects. See ObjectStore.ListObjects.
func (r *ReadModels) ListObjects(ctx context.Context, kind, owner, status string, before uint64, limit int) ([]Object, error) {
	if limit <= 0 {
		return nil, nil
	}
	idx := r.key("objidx", kind, owner)
	if status != "" {
		idx = r.key("objidx", kind, owner, status)
	}
	maxScore := "+inf"
	if before != 0 {
		maxScore = "(" + strconv.FormatUint(before, 10)
	}
	ids, err := r.rdb.ZRevRangeByScore(ctx, idx, &redis.ZRangeBy{Max: maxScore, Min: "-inf", Count: int64(limit)}).Result()
	if err != nil {
		return nil, wrapRedis("list objects "+kind+" of "+owner, err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, r.key("obj", kind, id))
		}
		return nil
	})
	if err != nil {
		return nil, wrapRedis("list objects "+kind+" of "+owner, err)
	}
	out := make([]Object, 0, len(ids))
	for i, c := range cmds {
		m := c.Val()
		seq, err := strconv.ParseUint(m["seq"], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list objects %s: %s: seq: %w", kind, ids[i], err)
		}
		out = append(out, Object{Kind: kind, ID: ids[i], Owner: m["owner"], Status: m["status"], Seq: seq, Data: []byte(m["data"])})
	}
	return out, nil
}

// memObjects is MemoryReadModels' object store.
type memObjects struct {
	mu      sync.Mutex
	byID    map[string]Object   // kind + "/" + id
	byOwner map[string][]Object // kind + "/" + owner, by Seq
}

func (m *MemoryReadModels) objects() *memObjects {
	m.objOnce.Do(func() {
		m.obj = &memObjects{byID: map[string]Object{}, byOwner: map[string][]Object{}}
	})
	return m.obj
}

// PutObjects stores copies of objs. See ObjectStore.PutObjects.
func (m *MemoryReadModels) PutObjects(ctx context.Context, objs []Object) error {
	s := m.objects()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range objs {
		o.Data = slices.Clone(o.Data)
		k := o.Kind + "/" + o.ID
		_, replace := s.byID[k]
		s.byID[k] = o
		ok := o.Kind + "/" + o.Owner
		list := s.byOwner[ok]
		i, found := slices.BinarySearchFunc(list, o.Seq, func(x Object, seq uint64) int { return cmp.Compare(x.Seq, seq) })
		switch {
		case found && replace:
			list[i] = o
		case found:
			return fmt.Errorf("put object %s %s: seq %d already used by %s", o.Kind, o.ID, o.Seq, list[i].ID)
		default:
			list = slices.Insert(list, i, o)
		}
		s.byOwner[ok] = list
	}
	return nil
}

// GetObject returns a copy of one object. See ObjectStore.GetObject.
func (m *MemoryReadModels) GetObject(ctx context.Context, kind, id string) (Object, bool, error) {
	s := m.objects()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.byID[kind+"/"+id]
	o.Data = slices.Clone(o.Data)
	return o, ok, nil
}

// ListObjects pages an owner's objects. See ObjectStore.ListObjects.
func (m *MemoryReadModels) ListObjects(ctx context.Context, kind, owner, status string, before uint64, limit int) ([]Object, error) {
	s := m.objects()
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.byOwner[kind+"/"+owner]
	i := len(list)
	if before != 0 {
		i, _ = slices.BinarySearchFunc(list, before, func(x Object, seq uint64) int { return cmp.Compare(x.Seq, seq) })
	}
	var out []Object
	for i--; i >= 0 && len(out) < limit; i-- {
		if o := list[i]; status == "" || o.Status == status {
			o.Data = slices.Clone(o.Data)
			out = append(out, o)
		}
	}
	return out, nil
}
