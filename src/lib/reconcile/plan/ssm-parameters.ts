import type { DesiredCell } from '../../core/desired.ts';
import type { Action, CellObservation, Check, Observation, ObservedImage } from '../types.ts';
import { readFailure } from './common.ts';
import { supersededCheck, supersededFor } from './superseded.ts';

/** The configured SSM parameters hold the AMI; a late write of this build over a newer one is rolled forward. */
function planParameters(
  cell: DesiredCell,
  obs: CellObservation,
  image: ObservedImage,
  observation: Observation,
  actions: Action[],
): Check[] {
  return cell.parameters.map((parameter): Check => {
    const subject = parameter.name;
    const observed = obs.parameters[parameter.name];
    if (observed === undefined) return { check: 'ssm-parameter', subject, result: 'pending', reason: 'not observed' };
    if (!observed.ok) return readFailure('ssm-parameter', subject, observed.error);
    if (observed.value === image.imageId) {
      // SSM writes an aws:ec2:image value only once validated: a put of this build that a newer build's value
      // beat may land after it, out of reach of apply's re-read and the sweep. Then roll forward here.
      const newer = observation.newerBuilds.ok ? observation.newerBuilds.value.find((b) => b.amis[cell.key] !== undefined) : undefined;
      const newerAmi = newer?.amis[cell.key];
      if (newer === undefined || newerAmi === undefined)
        return { check: 'ssm-parameter', subject, result: 'ok', reason: `holds ${image.imageId}` };
      const id = `${cell.key}/put-parameter/${subject}/roll-forward`;
      const reason = `holds ${image.imageId} of this build, but newer build ${newer.arn} has ${newerAmi} here: this build's write landed last; rolled forward`;
      actions.push({
        id,
        kind: 'put-parameter',
        cell: { region: cell.region, accountId: cell.accountId },
        target: subject,
        reason,
        name: subject,
        value: newerAmi,
        dataType: parameter.dataType,
      });
      return { check: 'ssm-parameter', subject, result: 'drift', reason, actionIds: [id] };
    }
    const superseded = supersededFor(cell, observation, [observed.value ?? undefined]);
    if (superseded !== undefined) return supersededCheck('ssm-parameter', subject, superseded);
    const id = `${cell.key}/put-parameter/${subject}`;
    const reason = observed.value === null ? 'the parameter does not exist' : `holds ${observed.value}, not ${image.imageId}`;
    actions.push({
      id,
      kind: 'put-parameter',
      cell: { region: cell.region, accountId: cell.accountId },
      target: subject,
      reason,
      name: subject,
      value: image.imageId,
      dataType: parameter.dataType,
    });
    return { check: 'ssm-parameter', subject, result: 'drift', reason, actionIds: [id] };
  });
}

export { planParameters };
