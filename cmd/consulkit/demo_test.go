package main

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// reportFigure finds re in the report and returns its submatches, failing
// the test when it is missing.
func reportFigure(t *testing.T, report string, re string) []string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(report)
	require.NotNil(t, m, "the report has no %q:\n%s", re, report)
	return m
}

// millis parses a figure printed as "1234.5" (milliseconds).
func millis(t *testing.T, s string) time.Duration {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return time.Duration(f * float64(time.Millisecond))
}

func atoi(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err)
	return n
}

// checkReport asserts the key facts of every scene in a demo's report.
func checkReport(t *testing.T, report string, workers, rounds int) {
	t.Helper()
	lines := strings.Count(report, "\n")
	assert.LessOrEqual(t, lines, 40, "the report is too long:\n%s", report)

	// 1. Jobs under the lock.
	jobs := strconv.Itoa(workers * rounds)
	reportFigure(t, report, `\n   `+jobs+` jobs run \(`+strconv.Itoa(workers)+` workers x `+strconv.Itoa(rounds)+` rounds\) in \d+\.\d ms; at most 1 in a job at once\n`)
	m := reportFigure(t, report, `ModifyIndex (\d+)\.\.(\d+); output = (\d+) \(GuardedPut\)`)
	assert.Less(t, atoi(t, m[1]), atoi(t, m[2]), "tokens did not grow")
	assert.Equal(t, m[2], m[3], "the output is not the newest token")
	reportFigure(t, report, `median job \d+\.\d ms, median handoff .* \d+\.\d ms\n`)

	// 2. A lost lock.
	m = reportFigure(t, report, `A's held context ended (\d+\.\d) ms (after|before) Destroy returned`)
	assert.Less(t, millis(t, m[1]), time.Second, "the loss was not reported at once")
	reportFigure(t, report, `cause: lock: lost: .*\(wraps lock\.ErrLost: true\); A's session: session\.ErrInvalidated\n`)
	m = reportFigure(t, report, `B got the lock (\d+\.\d) ms after the destroy began \(lock delay 1000\.0 ms\), token (\d+) > (\d+)\n`)
	assert.GreaterOrEqual(t, millis(t, m[1]), time.Second, "B got the lock within the lock delay")
	assert.Greater(t, atoi(t, m[2]), atoi(t, m[3]))

	// 3. Election.
	m = reportFigure(t, report, `failover to (candidate-[123]) in (\d+\.\d) ms \(lock delay 1000\.0 ms\); leaders in order: (candidate-[123]), (candidate-[123])\n`)
	assert.GreaterOrEqual(t, millis(t, m[2]), time.Second, "failover within the lock delay")
	assert.Equal(t, m[1], m[4], "the failover names another leader than the order does")
	assert.NotEqual(t, m[3], m[4], "the deposed leader led again")
	m2 := reportFigure(t, report, `observer saw \(@ ms since start\): (.*)\n`)
	assert.Contains(t, m2[1], m[3]+" @", "the observer did not see the first leader")
	assert.Contains(t, m2[1], m[4]+" @", "the observer did not see the second leader")
	assert.Regexp(t, `-> no leader @\d+\.\d$`, m2[1], "the observer's last sighting is not the key free")
	reportFigure(t, report, `its function saw leading end \d+\.\d ms (after|before) Destroy returned \(deposed; it stops\)\n`)
	reportFigure(t, report, `at most 1 leader at once; all 3 Runs returned on cancel, the key is free\n`)

	// 4. Semaphore.
	reportFigure(t, report, `\n   12 acquisitions \(6 workers x 2, holding 20\.0 ms\) in \d+\.\d ms\n`)
	reportFigure(t, report, `at most 2 holders at once \(limit 2\); median wait for a slot \d+\.\d ms; none left after\n`)

	// 5. Heartbeat.
	reportFigure(t, report, `check consulkit-demo-[0-9a-f]{8}-alive \(TTL 2000\.0 ms\) is passing: "demo app healthy"\n`)
	m = reportFigure(t, report, `lock lost (\d+\.\d) ms later \(wraps lock\.ErrLost: true\); session: session\.ErrInvalidated\n`)
	assert.Less(t, millis(t, m[1]), 2*time.Second, "the lock outlived the check's TTL")
	reportFigure(t, report, `check now critical: "demo app unhealthy \(flipped by the demo\)"; heartbeat stopped, check deregistered\n`)

	reportFigure(t, report, `cleanup: \d+ keys under consulkit-demo/[0-9a-f]{8}/ deleted; sessions left: 0, checks left: 0\n`)
	reportFigure(t, report, `all invariants held \(5 scenes in \d+\.\d ms\)\n$`)
	assert.NotContains(t, report, "FAILED")
}

func TestDemoProvisionsAnAgentShowsEverySceneAndRemovesIt(t *testing.T) {
	var stdout, stderr strings.Builder
	start := time.Now()
	err := run(t.Context(), []string{"demo", "-workers", "3", "-rounds", "3"}, &stdout, &stderr)
	report := stdout.String()
	require.NoError(t, err, "report:\n%s\nstderr:\n%s", report, stderr.String())
	t.Logf("demo took %s:\n%s", time.Since(start), report)
	assert.Empty(t, stderr.String(), "the demo logged without -v")
	checkReport(t, report, 3, 3)

	// The agent it started is gone.
	addr := reportFigure(t, report, `Consul is running at (\S+) \(`)[1]
	assertNoAgent(t, addr, "the demo")
}

func TestDemoAgainstAnExistingAgentLeavesNothingBehind(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	sessionsBefore := sessionIDs(t, c)

	var stdout, stderr strings.Builder
	err := run(t.Context(), []string{"demo", "-http-addr", a.Addr, "-workers", "2", "-rounds", "4"}, &stdout, &stderr)
	report := stdout.String()
	require.NoError(t, err, "report:\n%s\nstderr:\n%s", report, stderr.String())
	assert.Empty(t, stderr.String(), "the demo logged without -v")
	checkReport(t, report, 2, 4)
	assert.NotContains(t, report, "starting a local Consul", "the demo started an agent of its own")
	prefix := reportFigure(t, report, `everything the demo writes is under (consulkit-demo/[0-9a-f]{8}/)\n`)[1]

	keys, _, err := c.KV().Keys(t.Context(), "consulkit-demo/", "", nil)
	require.NoError(t, err)
	assert.Empty(t, keys, "the demo left keys behind (its prefix was %s)", prefix)
	for id, name := range sessionIDs(t, c) {
		_, existed := sessionsBefore[id]
		assert.True(t, existed, "the demo left session %s (%q) behind", id, name)
	}
	checks, _, err := c.Agent().Checks(t.Context(), nil)
	require.NoError(t, err)
	for id := range checks {
		assert.False(t, strings.HasPrefix(id, "consulkit-demo-"), "the demo left check %s behind", id)
	}
}

// sessionIDs returns the agent's sessions, ID to name.
func sessionIDs(t *testing.T, c *api.Client) map[string]string {
	t.Helper()
	list, _, err := c.Session().List(t.Context(), nil)
	require.NoError(t, err)
	ids := make(map[string]string, len(list))
	for _, se := range list {
		ids[se.ID] = se.Name
	}
	return ids
}

func TestDemoRejectsBadFlagsBeforeStartingAnything(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no workers", []string{"-workers", "0"}, "-workers must be between 1 and 50, not 0"},
		{"too many workers", []string{"-workers", "51"}, "-workers must be between 1 and 50, not 51"},
		{"no rounds", []string{"-rounds", "0"}, "-rounds must be between 1 and 100, not 0"},
		{"negative rounds", []string{"-rounds", "-3"}, "-rounds must be between 1 and 100, not -3"},
		{"an argument", []string{"-workers", "2", "now"}, `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			start := time.Now()
			err := run(t.Context(), append([]string{"demo"}, tc.args...), &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var ue *usageError
			assert.True(t, errors.As(err, &ue), "%v is not a usage error", err)
			assert.Equal(t, 2, exitStatus(err, io.Discard))
			assert.Empty(t, stdout.String(), "the demo began before its flags were checked")
			assert.Less(t, time.Since(start), time.Second)
		})
	}

	t.Run("not a number", func(t *testing.T) {
		var stdout, stderr strings.Builder
		err := run(t.Context(), []string{"demo", "-rounds", "many"}, &stdout, &stderr)
		require.Error(t, err)
		assert.Contains(t, stderr.String(), `invalid value "many" for flag -rounds`)
		assert.Empty(t, stdout.String())
	})
}

// TestDemoInterruptedWhileStartingFails: Ctrl-C before the agent is up
// removes what was started, and is no success: nothing was shown.
func TestDemoInterruptedWhileStartingFails(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout strings.Builder
	err := run(ctx, []string{"demo"}, &stdout, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "interrupted while starting the agent")
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, exitStatus(err, io.Discard))
	assert.NotContains(t, stdout.String(), "all invariants held")
}
