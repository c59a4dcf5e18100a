/** Placeholder: filled in by the federation membership work. */
import type { AnyEndpoint } from '../api/endpoint.ts';

export const membershipFederationEndpoints: AnyEndpoint[] = [];
