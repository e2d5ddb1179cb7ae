package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/consulkit/consulkit/ttlcheck"
)

// maxProbeNote bounds the probe output sent as the check's output.
const maxProbeNote = ttlcheck.MaxNoteSize

// noteBuffer keeps the first bytes written to it, one more than a note
// may hold, and drops the rest: a probe's output is held in memory, and a
// probe may write without end. (os/exec calls Write from one goroutine at
// a time when Stdout and Stderr are the same writer.)
type noteBuffer struct {
	b   []byte
	cut bool
}

func (w *noteBuffer) Write(p []byte) (int, error) {
	n := min(len(p), maxProbeNote+1-len(w.b))
	w.b = append(w.b, p[:n]...)
	if n < len(p) {
		w.cut = true
	}
	return len(p), nil
}

// note returns the output without surrounding spaces. Output that was cut
// ends with ttlcheck.TruncatedMarker: as kept, when it is still over
// maxProbeNote, for ttlcheck to cut to size with its marker; with the
// marker added where it fits (invalid UTF-8, sent as one U+FFFD per run
// of bad bytes, can make it shorter).
func (w *noteBuffer) note() string {
	if !w.cut {
		return strings.TrimSpace(string(w.b))
	}
	s := strings.ToValidUTF8(string(w.b), "\uFFFD")
	if len(s) <= maxProbeNote {
		s += ttlcheck.TruncatedMarker
	}
	return s
}

func heartbeatCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("heartbeat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	var check ttlcheck.Check
	fs.StringVar(&check.ID, "id", "", "check ID on the local agent (required)")
	fs.StringVar(&check.Name, "name", "", "check name (default: the ID)")
	fs.DurationVar(&check.TTL, "ttl", 15*time.Second, "the check turns critical when no beat comes for this long")
	fs.StringVar(&check.ServiceID, "service-id", "", "attach the check to this service, already registered with the agent")
	probe := fs.String("probe", "", "shell command run before every beat: exit 0 is passing, 1 warning, anything else critical; its output is the check's output (default: passing while the command runs)")
	probeTimeout := fs.Duration("probe-timeout", 0, "how long the probe may run (default: half the beat interval, which is TTL/3: TTL/6)")
	grace := fs.Duration("grace", 10*time.Second, "when consulkit is interrupted, time between SIGTERM and SIGKILL to the command")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	argv := fs.Args()
	switch {
	case check.ID == "":
		return &usageError{msg: "heartbeat: -id is required"}
	case len(argv) == 0 || argv[0] == "":
		return &usageError{msg: "heartbeat: want a command"}
	case *grace <= 0:
		return &usageError{msg: fmt.Sprintf("heartbeat: -grace must be positive, not %s", *grace)}
	}
	if err := checkCommand(argv); err != nil {
		return err
	}
	if check.Name == "" {
		check.Name = check.ID
	}
	client, err := cf.client()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	holdSignals()
	log := cf.logger(stderr)
	opts := []ttlcheck.Option{ttlcheck.WithLogger(log)}
	if *probe != "" {
		opts = append(opts, ttlcheck.WithProbe(shellProbe(*probe)))
	}
	if *probeTimeout != 0 {
		opts = append(opts, ttlcheck.WithProbeTimeout(*probeTimeout))
	}
	hb, err := ttlcheck.New(client, check, opts...)
	if err != nil {
		return err
	}

	c, err := startChild(argv, []string{"CONSULKIT_CHECK_ID=" + check.ID}, stdout, stderr)
	if err != nil {
		return err
	}
	hctx, stopBeats := context.WithCancel(ctx)
	beats := make(chan error, 1)
	go func() { beats <- hb.Run(hctx) }()

	var hbErr, deregErr error
	select {
	case <-c.done:
	case <-ctx.Done():
		c.stop(*grace)
	case hbErr = <-beats:
		// The first registration was refused: the command goes on (it is the
		// application; the heartbeat only reports on it), and the failure is
		// consulkit's exit status when the command succeeds.
		log.Error("heartbeat ended; the command keeps running", "check", check.ID, "err", hbErr)
		select {
		case <-c.done:
		case <-ctx.Done():
			c.stop(*grace)
		}
	}
	c.stop(*grace) // what the command left running
	stopBeats()
	if hbErr == nil {
		// Run deregisters the check; it returns the cause of hctx, so only
		// a failed deregistration is news. An error without it is a first
		// registration refused after the command ended (while it was
		// being stopped): as above.
		switch err := <-beats; {
		case err == nil || err == context.Canceled: //nolint:errorlint // a joined error carries the deregistration's
		case errors.Is(err, context.Canceled):
			deregErr = err
		default:
			hbErr = err
		}
	}
	if deregErr != nil {
		// The check is left registered: a failure of consulkit (1), as a
		// release that fails after lock's command is, whatever the
		// command's status. Not wrapped, so that exitStatus does not take
		// the command's status from it.
		return fmt.Errorf("heartbeat for check %s: the command exited with status %d, but removing the check failed, and it may stay registered: %v", check.ID, c.status(), deregErr) //nolint:errorlint // see above
	}
	if res := c.result(); res != nil {
		return res
	}
	if hbErr != nil {
		return fmt.Errorf("heartbeat for check %s: %w", check.ID, hbErr)
	}
	return nil
}

// shellProbe runs script with sh -c under the probe's deadline, in a
// process group of its own that is killed when the deadline passes. The
// shell gets SIGKILL when consulkit dies (SIGKILL cannot be caught), so
// that a probe does not outlive the heartbeat it was run for.
func shellProbe(script string) ttlcheck.Probe {
	return func(ctx context.Context) (ttlcheck.Status, string) {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
		var out noteBuffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 100 * time.Millisecond
		err := cmd.Run()
		if cmd.Process != nil {
			// What the probe left running goes with it: a probe is a
			// check, and each beat runs one.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		code := -1
		if cmd.ProcessState != nil {
			// Its shell's status, also when a process it started kept
			// the output open past WaitDelay (exec.ErrWaitDelay).
			code = cmd.ProcessState.ExitCode()
		}
		note := out.note()
		switch {
		case ctx.Err() != nil:
			return ttlcheck.Critical, "probe timed out: " + note
		case code == 0 && (err == nil || errors.Is(err, exec.ErrWaitDelay)):
			return ttlcheck.Passing, note
		case code == 1:
			return ttlcheck.Warning, note
		default:
			if note == "" {
				note = err.Error()
			}
			return ttlcheck.Critical, note
		}
	}
}
