/** Placeholder: filled in by the federation queries work. */
import type { AnyEndpoint } from '../api/endpoint.ts';

export const queriesFederationEndpoints: AnyEndpoint[] = [];
