import type { Scenario } from '../../sandbox/harness/scenario.ts';

const OWNER = '111111111111';
const A = '222222222222';
const B = '333333333333';
/** The region the cleanup tests remove from the configuration. */
const REMOVED = 'ap-northeast-1';

/**
 * A Linux image of pipeline `base`, distributed to the owner and A in us-east-1 and to `removedTargets` in
 * ap-northeast-1 (the region the tests then remove). The target accounts' roles are the ones
 * infra/target-account-role.yaml makes, with cleanup allowed.
 */
function cleanupScenario(name: string, removedTargets: string[]): Scenario {
  return {
    name,
    defaultAccount: OWNER,
    accounts: [A, B],
    regions: ['us-east-1', REMOVED],
    clockSpeed: 1,
    targetRoleParameters: { AllowCleanup: 'true' },
    imagebuilder: {
      recipes: [
        {
          name: 'base',
          semanticVersion: '1.0.0',
          parentImage: 'arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x',
          components: [{ componentArn: 'arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x' }],
        },
      ],
      infrastructure: [{ name: 'base', instanceProfileName: 'EC2InstanceProfileForImageBuilder' }],
      distributions: [
        {
          name: 'base',
          distributions: [
            {
              region: 'us-east-1',
              amiDistributionConfiguration: { name: 'base-{{imagebuilder:buildDate}}', targetAccountIds: [OWNER, A] },
            },
            {
              region: REMOVED,
              amiDistributionConfiguration: { name: 'base-{{imagebuilder:buildDate}}', targetAccountIds: removedTargets },
            },
          ],
        },
      ],
      pipelines: [{ name: 'base', recipe: 'base', infrastructure: 'base', distribution: 'base' }],
    },
  } as unknown as Scenario;
}

export { A, B, OWNER, REMOVED, cleanupScenario };
