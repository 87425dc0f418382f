/**
 * The EC2 reads of images by id that every feature makes, written once: observe (reconcile), the apply fence,
 * and cleanup's candidates.
 */
import { type EC2Client, type Image, paginateDescribeImages } from '@aws-sdk/client-ec2';

/**
 * Values per filter EC2 accepts in one request (EC2 API reference, "List and filter your resources": up to
 * 200 values per filter).
 */
const FILTER_VALUES_MAX = 200;

/**
 * The images with these ids that the caller can see, by id: every page, deprecated and disabled ones included.
 * A filter, not `ImageIds`: an id that is gone, not shared or not visible yet yields no row instead of failing
 * the whole call with InvalidAMIID.NotFound.
 */
async function describeImagesById(ec2: EC2Client, imageIds: readonly string[]): Promise<Map<string, Image>> {
  const found = new Map<string, Image>();
  const ids = [...new Set(imageIds)];
  for (let start = 0; start < ids.length; start += FILTER_VALUES_MAX) {
    const batch = ids.slice(start, start + FILTER_VALUES_MAX);
    const pages = paginateDescribeImages(
      { client: ec2 },
      { Filters: [{ Name: 'image-id', Values: batch }], IncludeDeprecated: true, IncludeDisabled: true },
    );
    for await (const page of pages) for (const image of page.Images ?? []) if (image.ImageId !== undefined) found.set(image.ImageId, image);
  }
  return found;
}

export { FILTER_VALUES_MAX, describeImagesById };
