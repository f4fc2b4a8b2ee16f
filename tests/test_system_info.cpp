// How busy the machine was around a timed task (harness/system_info.h):
// /proc/stat parsing against hand-computed sums, and the background CPU
// share on synthetic samples (real loads are not asserted: the machine
// running the tests is shared).
#include <gtest/gtest.h>

#include "harness/system_info.h"

using namespace embeval;

TEST(CpuUsage, BusySecondsLeaveOutIdleAndIowait) {
  // user nice system idle iowait irq softirq steal guest guest_nice, at 100 ticks/s:
  // busy = 100 + 20 + 30 + 6 + 7 + 8 = 171 ticks (guest time is already inside user).
  EXPECT_DOUBLE_EQ(busy_seconds_of_stat_line("cpu  100 20 30 400 50 6 7 8 9 10", 100), 1.71);
  // Old kernels print only the first four counters.
  EXPECT_DOUBLE_EQ(busy_seconds_of_stat_line("cpu 10 0 5 1000", 100), 0.15);
  int cpu = 7;
  EXPECT_DOUBLE_EQ(busy_seconds_of_stat_line("cpu  100 20 30 400 50 6 7 8 9 10", 100, &cpu), 1.71);
  EXPECT_EQ(cpu, -1);  // the total over all CPUs
  EXPECT_DOUBLE_EQ(busy_seconds_of_stat_line("cpu13 100 20 30 400", 100, &cpu), 1.5);
  EXPECT_EQ(cpu, 13);
  EXPECT_LT(busy_seconds_of_stat_line("intr 12345", 100), 0);
  EXPECT_LT(busy_seconds_of_stat_line("cpufreq 1 2 3 4", 100), 0);
  EXPECT_LT(busy_seconds_of_stat_line("cpu 1 2", 100), 0);
}

TEST(CpuUsage, BackgroundShareIsOthersBusyTimeOverOurCpuTime) {
  CpuSample a, b;
  a.wall_seconds = 10, a.machine_busy = 50, a.process_seconds = 3, a.cpus = 4;
  b.wall_seconds = 12, b.machine_busy = 55, b.process_seconds = 5, b.cpus = 4;
  // 5 s busy on our 4 CPUs, 2 s of it ours, in 2 s of wall time: 1.5 of 4 CPUs.
  EXPECT_DOUBLE_EQ(background_cpu_share(a, b).value(), 0.375);
  // Counters of CPUs outside the sample's count cannot push it over 1.
  b.machine_busy = 70;
  EXPECT_DOUBLE_EQ(background_cpu_share(a, b).value(), 1.0);
  // Ticks lag getrusage: a slightly negative difference reads as idle, not negative.
  b.machine_busy = 51.9;
  EXPECT_DOUBLE_EQ(background_cpu_share(a, b).value(), 0.0);
  b.machine_busy = -1;  // /proc/stat unreadable
  EXPECT_FALSE(background_cpu_share(a, b).has_value());
  b.machine_busy = 55, b.wall_seconds = 10.4;  // too short to tell
  EXPECT_FALSE(background_cpu_share(a, b).has_value());
}

TEST(CpuUsage, SamplesThisMachine) {
  const CpuSample a = cpu_sample();
  volatile double x = 0;
  CpuSample b;
  do {  // some CPU time of our own, over the half second a share needs
    for (int i = 0; i < 1000000; ++i) x = x + 1e-9 * i;
    b = cpu_sample();
  } while (b.wall_seconds - a.wall_seconds < 0.6);
  ASSERT_GE(a.machine_busy, 0) << "/proc/stat unreadable";
  EXPECT_GE(b.machine_busy, a.machine_busy);
  EXPECT_GT(b.process_seconds, a.process_seconds);
  EXPECT_GT(b.wall_seconds, a.wall_seconds);
  EXPECT_GE(b.cpus, 1);
  const double share = background_cpu_share(a, b).value();
  EXPECT_GE(share, 0.0);
  EXPECT_LE(share, 1.0);
}
