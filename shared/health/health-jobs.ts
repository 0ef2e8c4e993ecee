/**
 * Who runs the scheduled jobs (expiry, purge, history trim), as health reports it. Hosted,
 * only pg_cron does: if the extension is missing or a job is not scheduled, expired secrets
 * stay active in listings and deleted ones are never purged, silently; health says so.
 * Locally, `npm start` runs the same job functions on a timer where pg_cron is missing.
 */
import { type Probe, SCHEDULED_JOBS } from "./health-dal.ts";

export type JobScheduler = "pg_cron" | "local timer" | "missing";

export interface JobsReport {
  scheduler: JobScheduler;
  /** Jobs not scheduled as the migrations schedule them: absent, inactive, or on another schedule. */
  missing: string[];
  /** What to do about it, when something is missing. */
  fix?: string;
}

/**
 * `localTimer`: this process runs the jobs on a timer wherever pg_cron is missing (the local
 * server does; the edge function never does).
 */
export function assessJobs(probe: Pick<Probe, "pgCron" | "jobs">, options: { localTimer: boolean }): JobsReport {
  if (!probe.pgCron) {
    if (options.localTimer) return { scheduler: "local timer", missing: [] };
    return {
      scheduler: "missing",
      missing: SCHEDULED_JOBS.map((j) => j.name),
      fix: "enable the pg_cron extension, then schedule the jobs (re-run the jobs migration's cron.schedule calls)",
    };
  }
  const missing = SCHEDULED_JOBS
    .filter((want) => !probe.jobs.some((j) => j.name === want.name && j.active && j.schedule === want.schedule))
    .map((j) => j.name);
  if (missing.length === 0) return { scheduler: "pg_cron", missing };
  return {
    scheduler: "pg_cron",
    missing,
    fix: "schedule these jobs as the jobs migration does (cron.schedule by name, active, with its schedule)",
  };
}
