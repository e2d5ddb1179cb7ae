// Command consulkit runs consulkit's tools. Its first subcommand, dev,
// starts a local Consul through the integration harness and keeps it
// running until interrupted.
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

	"github.com/consulkit/consulkit/integration"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "consulkit:", err)
		os.Exit(1)
	}
}

const usage = `usage: consulkit <command> [flags]

commands:
  dev    start a local Consul dev agent and run it until interrupted
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "dev":
		return dev(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	acl := fs.Bool("acl", false, "enable ACLs (default deny) and print the management token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var opts []integration.AgentOption
	if *acl {
		opts = append(opts, integration.WithACL())
	}
	fmt.Fprintf(stderr, "starting Consul %s (%s mode)...\n", integration.ConsulVersion, integration.ProvisionMode())
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := integration.Shutdown(cctx); err != nil {
			fmt.Fprintln(stderr, "cleanup:", err)
		}
	}()
	a, err := integration.StartAgent(ctx, opts...)
	if err != nil {
		if ctx.Err() != nil {
			// Ctrl-C while the agent was starting: what was started is
			// removed, and stopping is what was asked for.
			fmt.Fprintln(stderr, "interrupted while starting; stopping...")
			return nil
		}
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.Close(cctx); err != nil {
			fmt.Fprintln(stderr, "stopping agent:", err)
		}
	}()
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
