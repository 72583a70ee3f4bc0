package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestScaleOutTimings: --drain-delay, --job-lease and --pcm-lease (and their
// variables) with their defaults; a negative lease is refused by name.
func TestScaleOutTimings(t *testing.T) {
	for _, tc := range []struct {
		env                  map[string]string
		args                 []string
		drain, job, pcmLease time.Duration
		wantErr              string
	}{
		{job: 5 * time.Minute},
		{args: []string{"--drain-delay", "5s", "--job-lease", "30s", "--pcm-lease", "1m"}, drain: 5 * time.Second, job: 30 * time.Second, pcmLease: time.Minute},
		{env: map[string]string{"PONTE_DRAIN_DELAY": "2s", "PONTE_JOB_LEASE": "10s", "PONTE_PCM_LEASE": "4s"},
			drain: 2 * time.Second, job: 10 * time.Second, pcmLease: 4 * time.Second},
		{args: []string{"--job-lease", "-1s"}, wantErr: "--job-lease and --pcm-lease must not be negative"},
		{args: []string{"--pcm-lease", "-1s"}, wantErr: "--job-lease and --pcm-lease must not be negative"},
	} {
		t.Run(fmt.Sprint(tc.env, tc.args), func(t *testing.T) {
			c, err := parse(t, tc.env, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DrainDelay != tc.drain || c.JobLease != tc.job || c.PCMLease != tc.pcmLease {
				t.Errorf("drain %s, job lease %s, pcm lease %s; want %s %s %s", c.DrainDelay, c.JobLease, c.PCMLease, tc.drain, tc.job, tc.pcmLease)
			}
		})
	}
}
