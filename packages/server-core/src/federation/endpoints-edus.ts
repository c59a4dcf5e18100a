/** Placeholder: filled in by the federation edus work. */
import type { AnyEndpoint } from '../api/endpoint.ts';

export const edusFederationEndpoints: AnyEndpoint[] = [];
