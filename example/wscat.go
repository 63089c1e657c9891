package main

import (
	"bufio"
	"context"
	"errors"
	"io"

	"github.com/resocket/resocket"
)

// maxLine is the longest stdin line sent as one message.
const maxLine = 1 << 20

// pumpStdin sends every line of stdin as a text message, then closes eof.
// While the client is disconnected SendText holds the lines (up to the
// send buffer), and they go out in order on the next connection.
func pumpStdin(ctx context.Context, stdin io.Reader, client *resocket.Client, eof chan<- struct{}, pr *printer) {
	defer close(eof)
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		err := client.SendText(ctx, sc.Text())
		switch {
		case err == nil:
		case errors.Is(err, resocket.ErrClosed) || ctx.Err() != nil:
			return
		default:
			pr.warn("line not sent: %v", err)
		}
	}
	if err := sc.Err(); err != nil {
		pr.warn("reading stdin: %v", err)
	}
}
