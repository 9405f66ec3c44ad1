/**
 * The console's login form. A browser cannot add an Authorization header to a page load, so the
 * bearer token given here is kept in an HttpOnly, SameSite=Strict cookie that the role's
 * credential check accepts for /ui/ and /api/ (shared/security.ts), as it accepts the header.
 */
import { esc } from '../html.ts';

export const LOGIN_COOKIE = 'plumb_token';

export function loginPage(next: string, failed: boolean, needed: boolean): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Log in · plumb</title>
<link rel="stylesheet" href="/ui/static/console.css"></head>
<body><header><span class="brand">plumb</span></header><main class="login"><h1>Log in</h1>
${failed ? '<div class="problem" role="alert">That token is not accepted.</div>' : ''}
${needed ? '' : '<p class="hint">This server checks no token: the console is open.</p>'}
<form method="post" action="/ui/login"><input type="hidden" name="next" value="${esc(next)}">
<label>Bearer token (one of collector.auth's) <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Log in</button></form></main></body></html>`;
}
