// Command greenbench runs Go's counterparts of four of green's criterion
// benchmarks, so that goroutines can be set beside the green, tokio and
// OS-thread figures of `bash benches/scripts/medians.sh`. One iteration does
// what one iteration of the Rust group does:
//
//	yield_many         benches/benches/scheduler.rs: 200 goroutines each call
//	                   runtime.Gosched() 1,000 times; all are waited for.
//	spawn_many         scheduler.rs: 10,000 empty goroutines are spawned, then
//	                   all waited for (one sync.WaitGroup: each goroutine's
//	                   only work is its Done, which stands in for the join).
//	chained_spawn      scheduler.rs: a chain of 1,000 goroutines, each spawning
//	                   the next; the last sends on a channel of capacity 1
//	                   (green's oneshot), which the caller receives from.
//	channel_ping_pong  benches/benches/channels.rs: two goroutines bounce a
//	                   number 1,000 round trips over two channels of capacity
//	                   1 (green::channel::bounded(1)); ping then closes its
//	                   channel, which ends pong's range loop.
//
// What is timed follows the Rust files. In yield_many and channel_ping_pong
// creating the goroutines is not the workload: green and tokio do not run a
// spawned task until the spawner blocks, but a goroutine may start at once,
// so here (as in the Rust OS-thread variants) the goroutines wait at a start
// line, the clock starts when all have reached it and stops when the last
// has finished. In spawn_many and chained_spawn spawning is the workload and
// is timed. Each workload starts after a runtime.GC(), runs once untimed
// (warm-up: goroutine stacks and channels are then reused from Go's free
// lists, as green's stack pool is warm), then runs iterations timed one by
// one until at least 30 have run and 2.5 s have passed. Garbage collection
// during the timed iterations is part of what is measured.
//
// Output: one line per workload with the median, minimum and maximum time of
// one iteration, the number of iterations, and the median divided by the
// workload's element count (a yield, a goroutine, a round trip), the
// per-element figure medians.sh prints for the Rust groups. On a loaded
// machine read the median; min and max show the spread.
//
// Run: bash benches/scripts/go.sh (builds, then runs with -procs 2 and
// -procs 1), or from this directory:
//
//	go run . [-procs N] [-only yield_many|spawn_many|chained_spawn|channel_ping_pong]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

// The counts of the Rust benchmarks.
const (
	yieldTasks    = 200   // yield_many: goroutines that yield
	yieldsPerTask = 1_000 // yield_many: yields per goroutine
	spawnTasks    = 10_000
	chainLength   = 1_000
	roundTrips    = 1_000 // channel_ping_pong
)

// How long each workload is timed, and the fewest iterations it runs.
const (
	budget        = 2500 * time.Millisecond
	minIterations = 30
)

// A workload: one iteration is round, which returns the time of its own
// timed region. elements and element name what the per-element figure
// divides by.
type workload struct {
	name     string
	round    func() time.Duration
	elements int
	element  string
}

var workloads = []workload{
	{"yield_many", yieldMany, yieldTasks * yieldsPerTask, "yield"},
	{"spawn_many", spawnMany, spawnTasks, "goroutine"},
	{"chained_spawn", chainedSpawn, chainLength, "goroutine"},
	{"channel_ping_pong", channelPingPong, roundTrips, "round trip"},
}

const usage = "usage: greenbench [-procs N] [-only yield_many|spawn_many|chained_spawn|channel_ping_pong]"

func main() {
	flags := flag.NewFlagSet("greenbench", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // the errors are reported below, in one line
	procs := flags.Int("procs", 2, "GOMAXPROCS: threads running Go code at once")
	only := flags.String("only", "", "run only the workload of this name")
	err := flags.Parse(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Println(usage)
		return
	case err != nil:
		fail(err.Error())
	case flags.NArg() > 0:
		fail(fmt.Sprintf("unexpected argument %q", flags.Arg(0)))
	case *procs < 1:
		fail(fmt.Sprintf("-procs must be at least 1, not %d", *procs))
	}

	selected := workloads
	if *only != "" {
		selected = nil
		for _, w := range workloads {
			if w.name == *only {
				selected = append(selected, w)
			}
		}
		if selected == nil {
			fail(fmt.Sprintf("no workload named %q", *only))
		}
	}

	runtime.GOMAXPROCS(*procs)
	for _, w := range selected {
		times := measure(w.round)
		med := median(times)
		fmt.Printf("%-18s procs=%d  median %s  (min %s, max %s, %d iterations)  %s per %s\n",
			w.name, runtime.GOMAXPROCS(0), format(float64(med)), format(float64(times[0])),
			format(float64(times[len(times)-1])), len(times), format(float64(med)/float64(w.elements)), w.element)
	}
}

// fail reports a bad command line in one line and exits with status 2.
func fail(msg string) {
	fmt.Fprintf(os.Stderr, "greenbench: %s (%s)\n", msg, usage)
	os.Exit(2)
}

// measure runs round once untimed, then times it until at least
// minIterations have run and budget has passed, and returns the times of
// the timed iterations, sorted.
func measure(round func() time.Duration) []time.Duration {
	runtime.GC() // start clean: no garbage left by the workload before
	round()
	var times []time.Duration
	for began := time.Now(); len(times) < minIterations || time.Since(began) < budget; {
		times = append(times, round())
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return times
}

// median of sorted times.
func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// format prints a time of ns nanoseconds with three or four significant
// digits, in the unit that suits it.
func format(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.1fns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1fµs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2fms", ns/1e6)
	default:
		return fmt.Sprintf("%.3fs", ns/1e9)
	}
}

// timeJobs runs each job on a goroutine of its own and returns the time
// from the moment all are released together until the last finishes:
// creating the goroutines is outside the timed region.
func timeJobs(jobs ...func()) time.Duration {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(len(jobs))
	done.Add(len(jobs))
	for _, job := range jobs {
		go func(job func()) {
			defer done.Done()
			ready.Done()
			<-start
			job()
		}(job)
	}
	ready.Wait()
	began := time.Now()
	close(start)
	done.Wait()
	return time.Since(began)
}

// yielders are the jobs of one yield_many iteration, made once.
var yielders = func() []func() {
	jobs := make([]func(), yieldTasks)
	for i := range jobs {
		jobs[i] = func() {
			for j := 0; j < yieldsPerTask; j++ {
				runtime.Gosched()
			}
		}
	}
	return jobs
}()

func yieldMany() time.Duration {
	return timeJobs(yielders...)
}

func spawnMany() time.Duration {
	var wg sync.WaitGroup
	began := time.Now()
	wg.Add(spawnTasks)
	for i := 0; i < spawnTasks; i++ {
		go wg.Done()
	}
	wg.Wait()
	return time.Since(began)
}

func chainedSpawn() time.Duration {
	done := make(chan struct{}, 1)
	began := time.Now()
	link(done, chainLength)
	<-done
	return time.Since(began)
}

// link is one goroutine of chained_spawn (the first call is the caller's):
// it spawns the next link, or at the end of the chain says it is done.
func link(done chan<- struct{}, left int) {
	if left == 0 {
		done <- struct{}{}
		return
	}
	go link(done, left-1)
}

func channelPingPong() time.Duration {
	toPong := make(chan uint64, 1)
	toPing := make(chan uint64, 1)
	ping := func() {
		var ball uint64
		for i := 0; i < roundTrips; i++ {
			toPong <- ball
			ball = <-toPing
		}
		close(toPong)
		if ball != roundTrips {
			panic(fmt.Sprintf("channel_ping_pong: the ball came back as %d, not %d", ball, roundTrips))
		}
	}
	pong := func() {
		for ball := range toPong {
			toPing <- ball + 1
		}
	}
	return timeJobs(ping, pong)
}
