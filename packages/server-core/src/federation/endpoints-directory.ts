/**
 * The peer directory's pull endpoint (a matrix-p2p extension of the server-server API, under
 * `unstable/org.matrix_p2p`): the signed directory announcements a node holds, its own first, so a
 * node coming online need not wait for the next gossip round (services/peer-directory.ts). X-Matrix
 * authenticated like every federation endpoint; each announcement is checked by the receiver.
 */
import { endpoint, type AnyEndpoint } from '../api/endpoint.ts';
import { CORS_HEADERS } from '../api/router.ts';
import { PEER_DIRECTORY_PATH } from '../services/peer-directory.ts';

/** The nearest spec section: a server's published room directory, for other servers. */
const SS = 'https://spec.matrix.org/latest/server-server-api';

export const directoryFederationEndpoints: AnyEndpoint[] = [
  endpoint({
    method: 'GET', path: PEER_DIRECTORY_PATH, auth: 'server', spec: `${SS}/#published-room-directory`,
    // The announcements are held as signed bytes: passed on as they are, not parsed and encoded again.
    handler: async ({ hs }) => new Response(await hs.peerDirectory.pullAnswer(), { headers: { 'content-type': 'application/json', ...CORS_HEADERS } }),
  }),
];
