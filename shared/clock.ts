/** Time, injected so tests control it, and timestamps as the API writes them. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A timestamp as the API writes it: ISO 8601 in UTC. */
export const iso = (d: Date | string): string => new Date(d).toISOString();

/** The same for a column that may be null. */
export const isoOrNull = (d: Date | string | null): string | null => (d === null ? null : iso(d));
