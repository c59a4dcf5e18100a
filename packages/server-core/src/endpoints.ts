/** The endpoint table: every endpoint this homeserver answers, from each area's declarations. */
import type { AnyEndpoint } from './api/endpoint.ts';
import { accountEndpoints } from './client/account.ts';
import { directoryEndpoints } from './client/directory.ts';
import { discoveryEndpoints } from './client/discovery.ts';
import { keysEndpoints } from './client/keys.ts';
import { mediaEndpoints } from './client/media.ts';
import { profileEndpoints } from './client/profile.ts';
import { roomEndpoints } from './client/rooms.ts';
import { syncEndpoints } from './client/sync.ts';
import { userDataEndpoints } from './client/user-data.ts';
import { FEDERATION_ENDPOINTS } from './federation/endpoints.ts';

export const ENDPOINTS: readonly AnyEndpoint[] = [
  ...discoveryEndpoints,
  ...accountEndpoints,
  ...roomEndpoints,
  ...syncEndpoints,
  ...userDataEndpoints,
  ...profileEndpoints,
  ...directoryEndpoints,
  ...keysEndpoints,
  ...mediaEndpoints,
  ...FEDERATION_ENDPOINTS,
];
