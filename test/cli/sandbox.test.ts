/** `npm run sandbox` narrates: every invocation with its function, trigger, image and outcome, and every report's counts. */
import { StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import { runSandbox } from '../../sandbox/harness/demo.ts';
import { colors } from '../../src/cli/format.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients } from '../helpers/sandbox.ts';

describe('npm run sandbox', () => {
  beforeAll(() => buildBundles());

  it('prints a line per invocation and per report, as the demo does', async () => {
    const lines: string[] = [];
    const io = { out: (s: string) => lines.push(...s.split('\n')), err: (s: string) => lines.push(`stderr: ${s}`) };
    const box = await runSandbox(io, colors(false), { port: 0, wire: true, speed: 3000 });
    try {
      const out = await clients(box.url, '111111111111').imagebuilder.send(
        new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: 'narrate' }),
      );
      const arn = out.imageBuildVersionArn ?? '';
      const final = await box.finalReport(arn, 30_000);
      await box.idle();
      expect(final?.outcome).toBe('converged');
      const at = /^\[\d\d:\d\d:\d\d\] /;
      // the rule's invocation of reconcile: function, trigger, image, outcome with counts
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(`${at.source}reconcile via eventbridge, \\d+ ms: ${arn} → pending \\(8 cells, \\d+ applied, 0 planned, 0 failed\\)$`),
        ),
      );
      // the recheck from SQS, naming the image its message is about
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`recheck via sqs, \\d+ ms: 1 recheck message\\(s\\): ${arn} → batch done$`)),
      );
      // each report with its counts
      expect(lines).toContainEqual(
        expect.stringMatching(
          /^\[\d\d:\d\d:\d\d\] {3}report golden-windows 1\.0\.0\/1 \(eventbridge, attempt 1, \d+ AWS calls\): PENDING: 8 cells/,
        ),
      );
      expect(lines).toContainEqual(
        expect.stringMatching(/report golden-windows 1\.0\.0\/1 \(sqs, attempt \d+, \d+ AWS calls\): CONVERGED: 8 cells \(8 ok\)/),
      );
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`Image Builder: ${arn} AVAILABLE$`)));
      // the address of the live report page, which serves the page of the build
      expect(lines).toContain(`report page: ${box.url}/_sandbox/report (every build reported on here; reload for the latest)`);
      const page = await fetch(`${box.url}/_sandbox/report`);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const html = await page.text();
      expect(html).toContain('<h2>golden-windows 1.0.0/1 <span class="chip s-converged">converged</span></h2>');
      expect(html.match(/<td class="cell s-ok"/g)).toHaveLength(8);
    } finally {
      await box.stop();
    }
  });
});
