package resocket

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDefaultPolicyCloseCodes(t *testing.T) {
	protocolErr := errors.New("websocket: bad close code 999")
	tests := []struct {
		name string
		d    Disconnect
		want Decision
	}{
		{"1000 normal closure stops", Disconnect{Code: 1000}, Decision{Action: Stop}},
		{"1001 going away reconnects", Disconnect{Code: 1001}, Decision{Action: Reconnect}},
		{"1005 no status reconnects", Disconnect{Code: 1005}, Decision{Action: Reconnect}},
		{"1006 link lost reconnects", Disconnect{Code: 1006, Err: errors.New("EOF")}, Decision{Action: Reconnect}},
		{"1011 internal error reconnects", Disconnect{Code: 1011}, Decision{Action: Reconnect}},
		{"1012 service restart reconnects", Disconnect{Code: 1012}, Decision{Action: Reconnect}},
		{"1013 try again later waits 5s", Disconnect{Code: 1013}, Decision{Action: Reconnect, MinDelay: 5 * time.Second}},
		{"1014 bad gateway reconnects", Disconnect{Code: 1014}, Decision{Action: Reconnect}},
		{"1002 from the server gives up", Disconnect{Code: 1002}, Decision{Action: GiveUp}},
		{"1002 found by us reconnects", Disconnect{Code: 1002, Err: protocolErr}, Decision{Action: Reconnect}},
		{"1003 unsupported data gives up", Disconnect{Code: 1003}, Decision{Action: GiveUp}},
		{"1007 invalid payload gives up", Disconnect{Code: 1007}, Decision{Action: GiveUp}},
		{"1008 policy violation gives up", Disconnect{Code: 1008}, Decision{Action: GiveUp}},
		{"1009 too big gives up", Disconnect{Code: 1009}, Decision{Action: GiveUp}},
		{"1010 mandatory extension gives up", Disconnect{Code: 1010}, Decision{Action: GiveUp}},
		{"1015 certificate rejected gives up", Disconnect{Code: 1015, Err: errors.New("x509")}, Decision{Action: GiveUp}},
		{"3000 unauthorized gives up", Disconnect{Code: 3000}, Decision{Action: GiveUp}},
		{"3003 forbidden gives up", Disconnect{Code: 3003}, Decision{Action: GiveUp}},
		{"3008 timeout reconnects", Disconnect{Code: 3008}, Decision{Action: Reconnect}},
		{"4000 private reconnects", Disconnect{Code: 4000}, Decision{Action: Reconnect}},
		{"4999 private reconnects", Disconnect{Code: 4999}, Decision{Action: Reconnect}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, DefaultPolicy(tt.d))
		})
	}
}

func TestDefaultPolicyHandshakeStatuses(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter time.Duration
		want       Decision
	}{
		{400, 0, Decision{Action: GiveUp}},
		{401, 0, Decision{Action: GiveUp}},
		{403, 0, Decision{Action: GiveUp}},
		{404, 0, Decision{Action: GiveUp}},
		{426, 0, Decision{Action: GiveUp}},
		{200, 0, Decision{Action: GiveUp}},
		{302, 0, Decision{Action: GiveUp}},
		{429, 0, Decision{Action: Reconnect}},
		{429, 7 * time.Second, Decision{Action: Reconnect, MinDelay: 7 * time.Second}},
		{503, 30 * time.Second, Decision{Action: Reconnect, MinDelay: 30 * time.Second}},
		{408, 0, Decision{Action: Reconnect}},
		{500, 0, Decision{Action: Reconnect}},
		{502, 0, Decision{Action: Reconnect}},
		{504, 0, Decision{Action: Reconnect}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d retry-after %s", tt.status, tt.retryAfter), func(t *testing.T) {
			d := Disconnect{Code: StatusAbnormalClosure, HTTPStatus: tt.status, RetryAfter: tt.retryAfter}
			assert.Equal(t, tt.want, DefaultPolicy(d))
		})
	}
}

// The policy must give a valid decision, never panic, for any Disconnect.
func TestDefaultPolicyAlwaysValid(t *testing.T) {
	for code := -1; code <= 70000; code += 7 {
		for _, status := range []int{0, 101, 999, -5} {
			dec := DefaultPolicy(Disconnect{Code: StatusCode(code), HTTPStatus: status, RetryAfter: -time.Second})
			assert.Contains(t, []Action{Reconnect, Stop, GiveUp}, dec.Action)
			if dec.MinDelay < 0 {
				t.Fatalf("negative MinDelay for code %d status %d", code, status)
			}
		}
	}
}

func TestStatusCodeString(t *testing.T) {
	assert.Equal(t, "1012 (service restart)", StatusServiceRestart.String())
	assert.Equal(t, "3003 (forbidden)", StatusCode(3003).String())
	assert.Equal(t, "4001 (private)", StatusCode(4001).String())
	assert.Equal(t, "999", StatusCode(999).String())
}

func TestSendableCloseCodes(t *testing.T) {
	for _, code := range []StatusCode{1000, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999} {
		assert.NoError(t, validateClose(code, ""), code)
	}
	for _, code := range []StatusCode{-1, 0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000} {
		assert.ErrorIs(t, validateClose(code, ""), ErrInvalidCloseCode, code)
	}
	assert.NoError(t, validateClose(1000, string(make([]byte, 123))))
	assert.ErrorIs(t, validateClose(1000, string(make([]byte, 124))), ErrInvalidReason)
	assert.ErrorIs(t, validateClose(1000, "\xff"), ErrInvalidReason)
}

// A refused credential (401, 3000) with HeaderFunc set is retried once at
// once; a second in a row gives up; without HeaderFunc it gives up at
// once. The row is what Previous says.
func TestDefaultPolicyFreshCredentials(t *testing.T) {
	refused401 := &Disconnect{Code: StatusAbnormalClosure, HTTPStatus: 401}
	closed3000 := &Disconnect{Code: 3000}
	other := &Disconnect{Code: StatusAbnormalClosure, Err: errors.New("EOF")}
	retry := Decision{Action: Reconnect, Immediate: true}
	giveUp := Decision{Action: GiveUp}
	tests := []struct {
		name string
		d    Disconnect
		want Decision
	}{
		{"401 without HeaderFunc gives up", Disconnect{HTTPStatus: 401}, giveUp},
		{"3000 without HeaderFunc gives up", Disconnect{Code: 3000}, giveUp},
		{"401 after 401 without HeaderFunc gives up", Disconnect{HTTPStatus: 401, Previous: refused401}, giveUp},
		{"401 with HeaderFunc retries at once", Disconnect{HTTPStatus: 401, FreshHeaders: true}, retry},
		{"3000 with HeaderFunc retries at once", Disconnect{Code: 3000, FreshHeaders: true}, retry},
		{"401 after 401 gives up", Disconnect{HTTPStatus: 401, FreshHeaders: true, Previous: refused401}, giveUp},
		{"3000 after 3000 gives up", Disconnect{Code: 3000, FreshHeaders: true, Previous: closed3000}, giveUp},
		{"401 after 3000 gives up", Disconnect{HTTPStatus: 401, FreshHeaders: true, Previous: closed3000}, giveUp},
		{"3000 after 401 gives up", Disconnect{Code: 3000, FreshHeaders: true, Previous: refused401}, giveUp},
		{"401 after another outcome retries", Disconnect{HTTPStatus: 401, FreshHeaders: true, Previous: other}, retry},
		{"3000 after another outcome retries", Disconnect{Code: 3000, FreshHeaders: true, Previous: other}, retry},
		{"3003 with HeaderFunc still gives up", Disconnect{Code: 3003, FreshHeaders: true}, giveUp},
		{"403 with HeaderFunc still gives up", Disconnect{HTTPStatus: 403, FreshHeaders: true}, giveUp},
		{"a refusal before does not change 1006", Disconnect{Code: 1006, FreshHeaders: true, Previous: refused401},
			Decision{Action: Reconnect}},
		{"a refusal before does not change 503", Disconnect{HTTPStatus: 503, FreshHeaders: true, Previous: refused401},
			Decision{Action: Reconnect}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, DefaultPolicy(tt.d))
		})
	}
}
