/**
 * A KEK rotation driven batch by batch, with its progress bar: `sigyl keys rotate` runs it
 * through the API as the service role, and `npm run keys:rotate` (Deno) runs the same loop
 * through the API or in-process. Portable: no Node or Deno global, output through `write`.
 */
import { type SigylClient, unwrap } from "../shared/client/client.ts";
import type { RotationDto } from "../shared/keys/key-schemas.ts";

export type { RotationDto };

/** One rotation step: at most one batch re-wrapped, as the route or the service reports it. */
export type RotationStep = () => Promise<RotationDto>;

export interface RotationOutput {
  /** Writes to the operator's terminal (stderr). */
  write: (text: string) => void;
  /** On a terminal the bar redraws one line; otherwise it prints one line per batch. */
  isTty: boolean;
}

/** Through the API: POST /secrets/admin/keys/rotate, one batch per call. */
export const apiRotationStep = (api: SigylClient, batchSize: number): RotationStep => () =>
  unwrap(api.POST("/secrets/admin/keys/rotate", { body: { batchSize, maxBatches: 1 } }));

export function progressLine(r: RotationDto, done: number): string {
  const total = done + r.remaining;
  const ratio = total === 0 ? 1 : done / total;
  const width = 30;
  const filled = Math.round(ratio * width);
  return `KEK v${r.fromVersion} -> v${r.toVersion} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ` +
    `${String(Math.floor(ratio * 100)).padStart(3)}% ${done}/${total} DEKs re-wrapped`;
}

/**
 * Steps until the rotation completes, drawing the bar after each batch. Gives up after five
 * steps that moved nothing (rows held by another rotator are waited for; DEKs that do not
 * unwrap never move): then `completed` is false and the rotation stays open, to resume later.
 */
export async function rotateInBatches(
  step: RotationStep,
  out: RotationOutput,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<RotationDto> {
  let done = 0;
  let idle = 0;
  let last: RotationDto | undefined;
  while (!last?.completed) {
    last = await step();
    done += last.rewrapped;
    const line = progressLine(last, done);
    out.write(out.isTty ? `\r${line}\x1b[K` : `${line}\n`);
    idle = last.completed || last.rewrapped > 0 ? 0 : idle + 1;
    if (idle >= 5) break;
    if (idle > 0) await sleep(200 * idle);
  }
  if (out.isTty) out.write("\n");
  return { ...last, rewrapped: done };
}

export const incompleteMessage = (r: RotationDto) =>
  `${r.remaining} DEKs could not be re-wrapped (the log names them: rewrap_failed); ` +
  `the rotation stays open and resumes on the next run`;

export const completedMessage = (r: RotationDto) =>
  `KEK v${r.toVersion} is active; v${r.fromVersion} and older are retired (${r.rewrapped} DEKs re-wrapped)`;
