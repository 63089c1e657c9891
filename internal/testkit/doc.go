// Package testkit is the one test kit of resocket's suites: the root
// package's behaviour tests, the fault-injection suite (faults/) and the
// interop suite (interop/) all read a client's events, wait for them with
// deadlines, describe them in failure messages and account for numbered
// messages with it, instead of keeping a copy each.
//
// It has four parts:
//
//   - [Recorder]: every event of a client, timestamped, in order, with
//     waits bounded by a deadline. [Read] reads the Events channel only
//     while the test waits (a test that stops waiting is a slow reader, so
//     backpressure tests keep their meaning); [Record] reads it on a
//     goroutine of its own (the client never waits on the test);
//     [NewRecorder] with [Recorder.OnEvent] records a client built with
//     Config.OnEvent. [CloseAndDrain] closes a client while its events
//     are drained, so that Close never waits on the test.
//   - [Describe], [DescribeAll] and [Recorder.History]: events as failure
//     messages print them.
//   - [Check] and [ExactlyOnceInOrder]: every message Send accepted was
//     received once, in order, or handed back in Closed.Unsent, and nothing
//     else arrived. [Payload] and [ParseSeq] number the messages.
//   - small helpers: [NewClient], [TerminateOnCleanup], [ReturnsWithin],
//     [WaitClosed], [Receive], [ClosedPort]; [ClientGoroutines] and
//     [NoClientGoroutines] see, at one instant and without retries, which
//     goroutines of package resocket are alive.
//
// Every wait takes a timeout and fails the test when it passes; none
// sleeps. Functions that fail a test with t.Fatalf must be called from the
// test's own goroutine, as testing requires.
//
// The package is internal to the module's import path, so the faults and
// interop modules, whose paths start with github.com/resocket/resocket/,
// may import it; users of resocket cannot.
package testkit
