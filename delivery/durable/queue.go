package durable

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/bridge-mq/bridge/delivery"
)

// DefaultLockTimeout is how long Open waits for the file's lock.
const DefaultLockTimeout = 500 * time.Millisecond

// The file holds two buckets: meta (the format, the epoch and the confirmed
// sequence number) and messages. Messages live in segments, a nested bucket
// for each run of segmentSize sequence numbers (segment number, 8 bytes
// big-endian), holding sequence number (8 bytes big-endian) -> flags byte,
// CRC-32C of the rest, then with flagHeaders the headers' length (a varint)
// and the headers as the protocol encodes them, then the payload. A segment is dropped whole once all of it
// is confirmed: deleting messages one by one costs a tree walk each, and
// grew slower the more the queue held. Confirmed messages in the one
// segment still partly unconfirmed are skipped on load. bbolt checksums
// only its meta pages; the CRC catches a payload damaged on disk.
var (
	metaBucket     = []byte("meta")
	messagesBucket = []byte("messages")
	formatKey      = []byte("format")
	epochKey       = []byte("epoch")
	confirmedKey   = []byte("confirmed")
	formatValue    = []byte("bridge-producer-queue/1")
	crcTable       = crc32.MakeTable(crc32.Castagnoli)
)

const (
	recordHeader = 1 + 4 // flags, CRC-32C
	segmentSize  = 4096
)

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

const (
	flagFirstChunk = 1 << 0
	flagLastChunk  = 1 << 1
	flagHeaders    = 1 << 2 // the message's headers precede its payload (a file of before they existed has none)
)

var (
	// ErrLocked is returned by Open when another process (another producer)
	// holds the queue's file. Worth retrying only once that producer has
	// stopped; two producers must never share a queue.
	ErrLocked = errors.New("durable: queue in use by another producer")

	// ErrCorrupt is returned by Open and Load for a file that is not a
	// readable producer queue. Not worth retrying: the file needs an
	// operator (restore it, or move it away to start empty, losing what it
	// held).
	ErrCorrupt = errors.New("durable: queue file unreadable")
)

// FileError says which file failed and how.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("durable: %s: %v", e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// Options configure Open.
type Options struct {
	// LockTimeout is how long Open waits for another producer to release
	// the file before it fails with ErrLocked. Default DefaultLockTimeout.
	LockTimeout time.Duration
}

// Queue is a delivery.DurableQueue in one bbolt file. bbolt is a
// copy-on-write B+tree that syncs each transaction to disk before the
// commit returns, so a message Store returned for survives a crash of the
// process or the machine.
type Queue struct {
	db   *bolt.DB
	path string
}

var _ delivery.DurableQueue = (*Queue)(nil)

// Open opens the queue at path, creating the file (and its directory) if it
// does not exist. An existing file that is not a readable producer queue is
// refused with ErrCorrupt; one locked by a live producer with ErrLocked.
// Both come in a *FileError that names the file.
func Open(path string, opts Options) (q *Queue, err error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	defer func() {
		// bbolt can panic on some corrupted pages; a file is input, and bad
		// input gets an error.
		if p := recover(); p != nil {
			q, err = nil, &FileError{Path: path, Err: fmt.Errorf("%w: %v", ErrCorrupt, p)}
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        opts.LockTimeout,
		NoFreelistSync: true, // rebuilt at open; makes each commit write less
		FreelistType:   bolt.FreelistMapType,
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, &FileError{Path: path, Err: ErrLocked}
	case err != nil:
		return nil, &FileError{Path: path, Err: fmt.Errorf("%w: %w", ErrCorrupt, err)}
	}
	if err := initialize(db, path); err != nil {
		db.Close()
		return nil, &FileError{Path: path, Err: err}
	}
	return &Queue{db: db, path: path}, nil
}

// initialize checks the file's size, structure and format, or sets up a
// new one.
func initialize(db *bolt.DB, path string) error {
	if err := db.View(func(tx *bolt.Tx) error {
		// A file cut short reads back zeros where its end was (bbolt maps
		// more than the file holds): its metadata says how long it must be.
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Size() < tx.Size() {
			return fmt.Errorf("%w: the file is %d bytes, its metadata says %d: truncated", ErrCorrupt, fi.Size(), tx.Size())
		}
		for err := range tx.Check() {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil
	}); err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			if bucketCount(tx) > 0 {
				return fmt.Errorf("%w: a bbolt file, but not a producer queue", ErrCorrupt)
			}
			var err error
			if meta, err = tx.CreateBucket(metaBucket); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(messagesBucket); err != nil {
				return err
			}
			return meta.Put(formatKey, formatValue)
		}
		if f := meta.Get(formatKey); string(f) != string(formatValue) {
			return fmt.Errorf("%w: format %q, want %q", ErrCorrupt, f, formatValue)
		}
		if tx.Bucket(messagesBucket) == nil {
			return fmt.Errorf("%w: the messages bucket is missing", ErrCorrupt)
		}
		return nil
	})
}

func bucketCount(tx *bolt.Tx) int {
	n := 0
	tx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil })
	return n
}

// Path returns the queue's file.
func (q *Queue) Path() string { return q.path }

// Load returns what the queue holds, messages in order.
func (q *Queue) Load(ctx context.Context) (st delivery.DurableState, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &FileError{Path: q.path, Err: fmt.Errorf("%w: %v", ErrCorrupt, p)}
		}
	}()
	err = q.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		st.Epoch = getUint(meta, epochKey)
		st.Confirmed = delivery.SeqNr(getUint(meta, confirmedKey))
		segments := tx.Bucket(messagesBucket).Cursor()
		for sk, sv := segments.First(); sk != nil; sk, sv = segments.Next() {
			seg := tx.Bucket(messagesBucket).Bucket(sk)
			if sv != nil || seg == nil || len(sk) != 8 {
				return fmt.Errorf("%w: a message segment is not a bucket", ErrCorrupt)
			}
			c := seg.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if len(k) != 8 || len(v) < recordHeader {
					return fmt.Errorf("%w: a message record of %d+%d bytes", ErrCorrupt, len(k), len(v))
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				seqNr := binary.BigEndian.Uint64(k)
				if seqNr <= uint64(st.Confirmed) {
					continue
				}
				payload := v[recordHeader:]
				if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(v[1:recordHeader]) {
					return fmt.Errorf("%w: message %d fails its checksum", ErrCorrupt, seqNr)
				}
				var headers []byte
				if v[0]&flagHeaders != 0 {
					n, k := binary.Uvarint(payload)
					if k <= 0 || n > uint64(len(payload)-k) {
						return fmt.Errorf("%w: message %d: its headers overrun the record", ErrCorrupt, seqNr)
					}
					headers = append([]byte(nil), payload[k:k+int(n)]...)
					payload = payload[k+int(n):]
				}
				st.Messages = append(st.Messages, delivery.StoredMessage{
					SeqNr:      delivery.SeqNr(seqNr),
					FirstChunk: v[0]&flagFirstChunk != 0,
					LastChunk:  v[0]&flagLastChunk != 0,
					Headers:    headers,
					Payload:    append([]byte(nil), payload...),
				})
			}
		}
		return nil
	})
	if err != nil && !errors.As(err, new(*FileError)) {
		err = &FileError{Path: q.path, Err: err}
	}
	return st, err
}

// Store applies u in one transaction, synced before it returns.
func (q *Queue) Store(ctx context.Context, u delivery.DurableUpdate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := q.db.Update(func(tx *bolt.Tx) error {
		meta, msgs := tx.Bucket(metaBucket), tx.Bucket(messagesBucket)
		if u.Epoch != 0 {
			if err := meta.Put(epochKey, u64(u.Epoch)); err != nil {
				return err
			}
		}
		if err := putMessages(msgs, u.Messages); err != nil {
			return err
		}
		if u.DiscardFrom != 0 {
			if err := discardFrom(msgs, uint64(u.DiscardFrom)); err != nil {
				return err
			}
		}
		if err := dropEach(msgs, u.Drop); err != nil {
			return err
		}
		if u.Confirmed > delivery.SeqNr(getUint(meta, confirmedKey)) {
			if err := meta.Put(confirmedKey, u64(uint64(u.Confirmed))); err != nil {
				return err
			}
			return dropConfirmed(msgs, uint64(u.Confirmed))
		}
		return nil
	})
	if err != nil {
		return &FileError{Path: q.path, Err: err}
	}
	return nil
}

// Close closes the file and releases its lock. Idempotent.
func (q *Queue) Close() error {
	err := q.db.Close()
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return nil
	}
	return err
}

func getUint(b *bolt.Bucket, key []byte) uint64 {
	if v := b.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// putMessages writes msgs into their segments. The records share one
// buffer, which bbolt needs to stay intact until the commit.
func putMessages(msgs *bolt.Bucket, batch []delivery.StoredMessage) error {
	size := 0
	for _, m := range batch {
		size += 8 + recordHeader + binary.MaxVarintLen64 + len(m.Headers) + len(m.Payload)
	}
	buf := make([]byte, 0, size)
	var seg *bolt.Bucket
	segNo := ^uint64(0)
	for _, m := range batch {
		if n := uint64(m.SeqNr) / segmentSize; n != segNo || seg == nil {
			var err error
			if seg, err = msgs.CreateBucketIfNotExists(u64(n)); err != nil {
				return err
			}
			seg.FillPercent = 1 // keys only grow: pack the pages full
			segNo = n
		}
		start := len(buf)
		buf = binary.BigEndian.AppendUint64(buf, uint64(m.SeqNr))
		var flags byte
		if m.FirstChunk {
			flags |= flagFirstChunk
		}
		if m.LastChunk {
			flags |= flagLastChunk
		}
		if m.Headers != nil {
			flags |= flagHeaders
		}
		buf = append(buf, flags, 0, 0, 0, 0) // the CRC, once the rest is written
		body := len(buf)
		if m.Headers != nil {
			buf = binary.AppendUvarint(buf, uint64(len(m.Headers)))
			buf = append(buf, m.Headers...)
		}
		buf = append(buf, m.Payload...)
		binary.BigEndian.PutUint32(buf[body-4:body], crc32.Checksum(buf[body:], crcTable))
		if err := seg.Put(buf[start:start+8], buf[start+8:]); err != nil {
			return err
		}
	}
	return nil
}

// dropEach deletes the messages numbered in drop, wherever they are (a
// segment that empties stays until Confirmed passes it).
func dropEach(msgs *bolt.Bucket, drop []delivery.SeqNr) error {
	for _, n := range drop {
		if seg := msgs.Bucket(u64(uint64(n) / segmentSize)); seg != nil {
			if err := seg.Delete(u64(uint64(n))); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropConfirmed deletes every segment whose numbers are all confirmed.
func dropConfirmed(msgs *bolt.Bucket, confirmed uint64) error {
	var done [][]byte
	c := msgs.Cursor()
	for k, _ := c.First(); k != nil && (binary.BigEndian.Uint64(k)+1)*segmentSize-1 <= confirmed; k, _ = c.Next() {
		done = append(done, append([]byte(nil), k...))
	}
	for _, k := range done {
		if err := msgs.DeleteBucket(k); err != nil {
			return err
		}
	}
	return nil
}

// discardFrom deletes every message from seqNr on.
func discardFrom(msgs *bolt.Bucket, seqNr uint64) error {
	first := seqNr / segmentSize
	var later [][]byte
	c := msgs.Cursor()
	for k, _ := c.Seek(u64(first + 1)); k != nil; k, _ = c.Next() {
		later = append(later, append([]byte(nil), k...))
	}
	for _, k := range later {
		if err := msgs.DeleteBucket(k); err != nil {
			return err
		}
	}
	seg := msgs.Bucket(u64(first))
	if seg == nil {
		return nil
	}
	var doomed [][]byte
	sc := seg.Cursor()
	for k, _ := sc.Seek(u64(seqNr)); k != nil; k, _ = sc.Next() {
		doomed = append(doomed, append([]byte(nil), k...))
	}
	for _, k := range doomed {
		if err := seg.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
