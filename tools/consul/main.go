// Command consul is a trimmed Consul 1.14.8 server build used by consulkit's
// tests. It registers only the commands the tests need: Consul's own main
// imports every command, and one of them does not compile against the api
// module version that Consul 1.14.8 pins.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/consul/command/agent"
	"github.com/hashicorp/consul/command/cli"
	"github.com/hashicorp/consul/command/forceleave"
	"github.com/hashicorp/consul/command/info"
	"github.com/hashicorp/consul/command/join"
	"github.com/hashicorp/consul/command/kv"
	kvget "github.com/hashicorp/consul/command/kv/get"
	kvput "github.com/hashicorp/consul/command/kv/put"
	"github.com/hashicorp/consul/command/leave"
	"github.com/hashicorp/consul/command/lock"
	"github.com/hashicorp/consul/command/members"
	"github.com/hashicorp/consul/command/version"
	mcli "github.com/mitchellh/cli"
)

func main() { os.Exit(run()) }

func run() int {
	log.SetOutput(io.Discard)
	ui := &cli.BasicUI{BasicUi: mcli.BasicUi{Writer: os.Stdout, ErrorWriter: os.Stderr}}
	shutdown := shutdownCh()
	cmds := map[string]mcli.CommandFactory{
		"agent":       func() (mcli.Command, error) { return agent.New(ui), nil },
		"force-leave": func() (mcli.Command, error) { return forceleave.New(ui), nil },
		"info":        func() (mcli.Command, error) { return info.New(ui), nil },
		"join":        func() (mcli.Command, error) { return join.New(ui), nil },
		"kv":          func() (mcli.Command, error) { return kv.New(), nil },
		"kv get":      func() (mcli.Command, error) { return kvget.New(ui), nil },
		"kv put":      func() (mcli.Command, error) { return kvput.New(ui), nil },
		"leave":       func() (mcli.Command, error) { return leave.New(ui), nil },
		"lock":        func() (mcli.Command, error) { return lock.New(ui, shutdown), nil },
		"members":     func() (mcli.Command, error) { return members.New(ui), nil },
		"version":     func() (mcli.Command, error) { return version.New(ui), nil },
	}
	c := &mcli.CLI{
		Args:        os.Args[1:],
		Commands:    cmds,
		Name:        "consul",
		HelpFunc:    mcli.BasicHelpFunc("consul"),
		HelpWriter:  os.Stdout,
		ErrorWriter: os.Stderr,
	}
	if c.IsVersion() {
		return version.New(ui).Run(nil)
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error executing CLI: %v\n", err)
		return 1
	}
	return code
}

// shutdownCh delivers one value per SIGINT or SIGTERM, as Consul's own
// command registry does for long-running commands such as lock.
func shutdownCh() <-chan struct{} {
	out := make(chan struct{})
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		for range sig {
			out <- struct{}{}
		}
	}()
	return out
}
