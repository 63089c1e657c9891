package resocket

import (
	"context"
	"encoding/json"
	"fmt"
)

// SendJSON encodes v as JSON and sends it as a MessageText; see Send. An
// encoding error is returned before anything is sent or buffered.
func (c *Client) SendJSON(ctx context.Context, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("resocket: SendJSON: %w", err)
	}
	return c.Send(ctx, MessageText, data)
}

// DecodeJSON decodes the message's data as JSON into v.
func (m Message) DecodeJSON(v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("resocket: message %d bytes: %w", len(m.Data), err)
	}
	return nil
}
