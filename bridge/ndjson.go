package bridge

import (
	"bytes"
	"errors"
	"fmt"
)

// NDJSON (application/x-ndjson) carries many messages in one HTTP body, a
// line each: the http source takes such a POST, the http sink sends such
// batches and `bridge dlq replay` replays through them. A line ends with
// "\n" (a "\r" before it is dropped, and so is the last line's missing
// "\n"); an empty line is no message. So a message that is empty, holds a
// "\n" or ends in "\r" cannot be a line: it goes alone, as a plain body
// (see plain).

// errNoLines is a body of NDJSON without a message.
var errNoLines = errors.New("bridge: an application/x-ndjson body with no line")

// tooManyLinesError is a body of NDJSON with more lines than are taken at
// once. Retrying does not help: split the body.
type tooManyLinesError struct{ Limit int }

func (e *tooManyLinesError) Error() string {
	return fmt.Sprintf("bridge: more than BRIDGE_HTTP_BATCH_MAX (%d) lines in one application/x-ndjson body", e.Limit)
}

// ndjsonLines splits body into its lines, without their line ends and
// skipping empty ones; they share body's memory. It returns
// *tooManyLinesError for more than limit and errNoLines for none.
func ndjsonLines(body []byte, limit int) ([][]byte, error) {
	msgs := make([][]byte, 0, min(limit, bytes.Count(body, []byte{'\n'})+1))
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		if len(msgs) == limit {
			return nil, &tooManyLinesError{Limit: limit}
		}
		msgs = append(msgs, line)
	}
	if len(msgs) == 0 {
		return nil, errNoLines
	}
	return msgs, nil
}

// plain reports whether a message must go alone, as a plain body: no
// NDJSON line can carry it as it is.
func plain(b []byte) bool {
	return len(b) == 0 || bytes.IndexByte(b, '\n') >= 0 || b[len(b)-1] == '\r'
}
