/** Placeholder: filled in by the federation history work. */
import type { AnyEndpoint } from '../api/endpoint.ts';

export const historyFederationEndpoints: AnyEndpoint[] = [];
