import type { ManagedPolicy } from '../state.ts';

/**
 * AWS managed policies the sandbox knows, in every partition (`arn:<partition>:iam::aws:policy/<name>`).
 *
 * Only what the project's templates attach. Each document holds the statements of AWS's published policy
 * that the sandbox checks (AWS Managed Policy Reference); where AWS grants more than the sandbox models, the
 * sandbox's copy grants less, never more, so a run can fail here that would pass on AWS, not the reverse.
 */
const DOCUMENTS: Record<string, unknown> = {
  // EC2FastLaunchFullAccess: what EnableFastLaunch needs without a launch template, when EC2 Fast Launch
  // builds its own VPC resources (Image Builder User Guide, distribution settings, Fast Launch)
  EC2FastLaunchFullAccess: {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'EC2FastLaunch',
        Effect: 'Allow',
        Action: ['ec2:EnableFastLaunch', 'ec2:DisableFastLaunch', 'ec2:DescribeFastLaunchImages'],
        Resource: '*',
      },
      {
        Sid: 'EC2ReadOnly',
        Effect: 'Allow',
        Action: [
          'ec2:DescribeImages',
          'ec2:DescribeLaunchTemplateVersions',
          'ec2:DescribeSnapshots',
          'ec2:DescribeVolumes',
          'ec2:DescribeRegions',
          'ec2:DescribeSecurityGroups',
          'ec2:DescribeSubnets',
          'ec2:DescribeVpcs',
          'ec2:DescribeInstances',
          'ec2:DescribeLaunchTemplates',
          'ec2:DescribeTags',
          'ec2:DescribeAvailabilityZones',
          'ec2:DescribeAccountAttributes',
        ],
        Resource: '*',
      },
      {
        Sid: 'EC2CreateVPC',
        Effect: 'Allow',
        Action: ['ec2:CreateVpc'],
        Resource: ['arn:aws:ec2:*:*:vpc/*'],
        Condition: {
          StringEquals: { 'aws:RequestTag/CreatedBy': 'EC2 Fast Launch' },
          'ForAnyValue:StringLike': { 'aws:CalledVia': 'ec2fastlaunch.amazonaws.com' },
        },
      },
    ],
  },
};

const PARTITIONS = ['aws', 'aws-cn', 'aws-us-gov'];

/** The AWS managed policies of every partition; their resource ARNs carry the partition of the policy. */
function awsManagedPolicies(created: string): ManagedPolicy[] {
  const out: ManagedPolicy[] = [];
  for (const partition of PARTITIONS) {
    for (const [name, document] of Object.entries(DOCUMENTS)) {
      out.push({
        arn: `arn:${partition}:iam::aws:policy/${name}`,
        name,
        document: JSON.stringify(document).replaceAll('"arn:aws:', `"arn:${partition}:`),
        created,
      });
    }
  }
  return out;
}

export { awsManagedPolicies };
