// Command consulkit runs consulkit's tools: demo starts a local Consul and
// shows locks, elections, semaphores and heartbeats at work on it,
// checking their invariants; dev starts a local Consul through the
// integration harness and keeps it running until interrupted; lock, sem
// and elect run a command while holding a lock, a semaphore slot
// or leadership, and stop it when that is lost; heartbeat keeps a TTL
// check alive while a command runs.
//
// Exit status: the command's own when it ran and nothing was lost (128+n
// when a signal n ended it); 1 when consulkit failed or the hold was lost
// while the command ran; 2 for bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

func main() {
	// SIGHUP (the terminal or ssh session closing) and SIGQUIT (Ctrl-\)
	// end consulkit as SIGTERM does: the command is stopped and the hold
	// released, rather than consulkit dying and leaving them behind.
	ctx, stop := context.Background(), context.CancelFunc(func() {})
	if sigs := notIgnored(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT); len(sigs) > 0 {
		ctx, stop = signal.NotifyContext(ctx, sigs...) // with none, Notify would catch every signal
	}
	// A write to a stdout or stderr whose reader has gone (a log collector
	// that died, "| head") would otherwise kill consulkit with SIGPIPE,
	// while it holds something and before it stops the command's process
	// group: with SIGPIPE caught, the write fails and consulkit goes on.
	// Caught, not ignored, so that the command keeps the default.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitStatus(err, os.Stderr))
}

// notIgnored returns the signals of sigs that consulkit was not started
// ignoring: SIGHUP or SIGINT ignored by whoever started it (SIGHUP under
// nohup; SIGINT in a script's background job) stays ignored, where Notify
// would turn it back on. Only for those two can Go tell (signal.Ignored):
// the runtime installs its own handler for the others, so an inherited
// SIG_IGN of SIGQUIT or SIGTERM is not seen, and they are caught.
func notIgnored(sigs ...os.Signal) []os.Signal {
	var out []os.Signal
	for _, s := range sigs {
		if !signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// exitStatus reports err and turns it into consulkit's exit status.
func exitStatus(err error, stderr io.Writer) int {
	var ee *exitError
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code // the command has spoken for itself
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if !ue.quiet {
			fmt.Fprintln(stderr, "consulkit:", err)
			fmt.Fprintln(stderr, "run 'consulkit <command> -h' for its flags")
		}
		return 2
	case errors.Is(err, api.ErrInvalid):
		// A flag's value that the library refused before sending anything.
		fmt.Fprintln(stderr, "consulkit:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "consulkit:", err)
		return 1
	}
}

const usage = `usage: consulkit <command> [flags]

commands:
  dev        start a local Consul dev agent and run it until interrupted
  demo       show locks, elections, semaphores and heartbeats at work, checking their invariants
  lock       run a command while holding a lock:       consulkit lock [flags] <key> [--] <command> [args...]
  sem        run a command while holding a slot:       consulkit sem -limit N [flags] <prefix> [--] <command> [args...]
  elect      run a command while leader, standby else: consulkit elect [flags] <key> [--] <command> [args...]
  heartbeat  keep a TTL check alive while a command runs: consulkit heartbeat -id ID [flags] <command> [args...]

The command is stopped (SIGTERM, then SIGKILL) when the lock, slot or
leadership is lost; under lock and elect it learns its fencing token from
CONSULKIT_FENCING_TOKEN.
Consul is found as by the consul CLI (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN...)
or with -http-addr.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{msg: "no command", quiet: true}
	}
	switch args[0] {
	case "dev":
		return dev(ctx, args[1:], stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "lock":
		return lockCmd(ctx, args[1:], stdout, stderr)
	case "sem":
		return semCmd(ctx, args[1:], stdout, stderr)
	case "elect":
		return electCmd(ctx, args[1:], stdout, stderr)
	case "heartbeat":
		return heartbeatCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &usageError{msg: fmt.Sprintf("unknown command %q", args[0]), quiet: true}
}

func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	acl := fs.Bool("acl", false, "enable ACLs (default deny) and print the management token")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if fs.NArg() > 0 {
		// "consulkit dev acl" must not start an agent without ACLs.
		return &usageError{msg: fmt.Sprintf("dev: unexpected argument %q", fs.Arg(0))}
	}
	var opts []integration.AgentOption
	if *acl {
		opts = append(opts, integration.WithACL())
	}
	fmt.Fprintf(stderr, "starting Consul %s (%s mode)...\n", integration.ConsulVersion, integration.ProvisionMode())
	a, stopAgent, err := startLocalAgent(ctx, stderr, opts...)
	defer stopAgent()
	if err != nil {
		if ctx.Err() != nil {
			// Ctrl-C while the agent was starting: what was started is
			// removed, and stopping is what was asked for.
			fmt.Fprintln(stderr, "interrupted while starting; stopping...")
			return nil
		}
		return err
	}
	fmt.Fprintf(stdout, "Consul %s is running at http://%s (%s mode)\n", integration.ConsulVersion, a.Addr, a.Mode)
	fmt.Fprintf(stdout, "export CONSUL_HTTP_ADDR=%s\n", a.Addr)
	if a.Token != "" {
		fmt.Fprintf(stdout, "export CONSUL_HTTP_TOKEN=%s\n", a.Token)
	}
	fmt.Fprintln(stderr, "press Ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(stderr, "stopping...")
	return nil
}

// startLocalAgent starts a Consul agent through the harness, for dev and
// demo. stop removes the agent and whatever else the harness started (its
// reaper, an image build); it must be called on every path, also when the
// start failed.
func startLocalAgent(ctx context.Context, stderr io.Writer, opts ...integration.AgentOption) (*integration.Agent, func(), error) {
	a, err := integration.StartAgent(ctx, opts...)
	stop := func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if a != nil {
			if err := a.Close(cctx); err != nil {
				fmt.Fprintln(stderr, "stopping agent:", err)
			}
		}
		if err := integration.Shutdown(cctx); err != nil {
			fmt.Fprintln(stderr, "cleanup:", err)
		}
	}
	return a, stop, err
}
