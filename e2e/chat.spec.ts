/**
 * The chat client (apps/web/src/chat) driven through its UI, as a person would, against the homeserver
 * worker: first-run account creation, rooms, messages, images, reloads, two accounts in one browser
 * (two tabs), invites, unread counts, the directory, join by alias, profile, logout/login, history.
 * Controls are found by their data-testid (apps/web/src/chat/README.md lists them).
 */
import type { Locator, Page } from '@playwright/test';
import { expect, mx, ok, test, waitControlled } from './fixtures.ts';

const id = (page: Page, testid: string): Locator => page.getByTestId(testid);

/** The chat is mounted and signed in (its main screen is up). */
async function signedIn(page: Page): Promise<void> {
  await expect(id(page, 'chat-main')).toBeVisible({ timeout: 20_000 });
}

/** First run: a display name is all it takes. Returns the new user id. */
async function signUp(page: Page, name: string): Promise<string> {
  await id(page, 'signup-name').fill(name);
  await id(page, 'signup-submit').click();
  await signedIn(page);
  await expect(id(page, 'my-name')).toHaveText(name);
  const userId = await id(page, 'my-user-id').getAttribute('title');
  expect(userId).toMatch(new RegExp(`^@${name.toLowerCase()}-[a-z0-9]{5}:[0-9a-f]{64}$`));
  return userId!;
}

async function createRoom(page: Page, name: string, opts: { public?: boolean; alias?: string; topic?: string } = {}): Promise<string> {
  await id(page, 'open-create-room').click();
  const dialog = id(page, 'create-room-dialog');
  await expect(dialog).toBeVisible();
  await id(page, 'create-room-name').fill(name);
  if (opts.topic) await id(page, 'create-room-topic').fill(opts.topic);
  if (opts.public) await id(page, 'create-room-public').check();
  if (opts.alias) await id(page, 'create-room-alias').fill(opts.alias);
  await id(page, 'create-room-submit').click();
  await expect(dialog).toHaveCount(0);
  await expect(id(page, 'room-name')).toHaveText(name);
  const item = roomItem(page, name);
  await expect(item).toHaveClass(/is-selected/);
  return (await item.getAttribute('data-room-id'))!;
}

function roomItem(page: Page, name: string): Locator {
  return page.locator(`[data-testid="room-item"][data-room-name="${name}"]`);
}

async function openRoom(page: Page, name: string): Promise<void> {
  await roomItem(page, name).getByRole('button').click();
  await expect(id(page, 'room-name')).toHaveText(name);
}

/** Type a message and press Enter; wait until the server has it (local echo turned into the event). */
async function say(page: Page, text: string): Promise<void> {
  await id(page, 'composer-input').fill(text);
  await id(page, 'composer-input').press('Enter');
  await expect(sentMessage(page, text)).toBeVisible();
  await expect(id(page, 'composer-input')).toHaveValue('');
}

function sentMessage(page: Page, text: string): Locator {
  return page.locator('[data-testid="message"][data-status="sent"]').filter({ has: page.getByTestId('message-body').getByText(text, { exact: true }) });
}

function bodies(page: Page): Promise<string[]> {
  return id(page, 'message-body').allTextContents();
}

async function openProfile(page: Page): Promise<void> {
  await id(page, 'open-profile').click();
  await expect(id(page, 'profile-dialog')).toBeVisible();
}

/** Every image in the timeline is loaded from a blob: URL (fetched with the access token). */
async function imagesLoaded(page: Page): Promise<number> {
  const images = id(page, 'message-image');
  await expect(images.first()).toHaveAttribute('src', /^blob:/);
  await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('[data-testid="message-image"]')].every((i) => i.complete && i.naturalWidth > 0));
  return images.count();
}

/** The access token this tab's chat is using (from the chat's localStorage records). */
async function chatToken(page: Page): Promise<string> {
  return page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('matrix-p2p.chat:') && k.endsWith(':accounts'))!;
    const accounts = JSON.parse(localStorage.getItem(key)!) as Array<{ userId: string; accessToken?: string }>;
    const active = sessionStorage.getItem(key.replace(/accounts$/, 'active'));
    return accounts.find((a) => a.userId === JSON.parse(active!))!.accessToken!;
  });
}

test('first run: create an account, a room, send messages and an image; after a reload everything is still there', async ({ app }) => {
  const page = await app();
  await expect(id(page, 'auth-screen')).toBeVisible();
  const alice = await signUp(page, 'Alice');

  await expect(id(page, 'rooms-empty')).toBeVisible();
  const roomId = await createRoom(page, 'Book club', { public: true, alias: 'bookclub', topic: 'One chapter a week' });
  await expect(id(page, 'room-topic')).toContainText('One chapter a week');
  await expect(id(page, 'room-alias')).toHaveText('#bookclub');
  await expect(id(page, 'state-event').filter({ hasText: 'Alice created the room' })).toBeVisible();

  await say(page, 'Hello, world!');
  await say(page, 'Has anyone started chapter 3?');
  // The Send button works too, and Shift+Enter makes a new line instead of sending.
  await id(page, 'composer-input').fill('Line one');
  await id(page, 'composer-input').press('Shift+Enter');
  await id(page, 'composer-input').pressSequentially('line two');
  await expect(id(page, 'composer-input')).toHaveValue('Line one\nline two');
  await id(page, 'composer-send').click();
  await expect(sentMessage(page, 'Line one\nline two')).toBeVisible();
  // Grouped: one sender header for the three messages.
  await expect(id(page, 'message-sender')).toHaveCount(1);
  await expect(id(page, 'message').first()).toHaveAttribute('data-sender', alice);

  // An image: uploaded with uploadContent, sent as m.image, shown through an authenticated blob URL.
  const png = await page.screenshot({ clip: { x: 0, y: 0, width: 320, height: 200 } });
  await id(page, 'composer-file').setInputFiles({ name: 'cover.png', mimeType: 'image/png', buffer: png });
  await expect(id(page, 'message-image')).toHaveCount(1);
  await expect(id(page, 'message-image')).toHaveAttribute('alt', 'cover.png');
  expect(await imagesLoaded(page)).toBe(1);
  await expect(page.locator('[data-testid="message"][data-status="sent"]').filter({ has: id(page, 'message-image') })).toHaveCount(1);
  await expect(roomItem(page, 'Book club')).toContainText('Alice sent an image');

  const before = await bodies(page);
  expect(before.slice(0, 3)).toEqual(['Hello, world!', 'Has anyone started chapter 3?', 'Line one\nline two']);

  await page.reload();
  await waitControlled(page);
  await signedIn(page);
  // Same account, same room (re-opened), same messages, the image loads again (from the worker).
  await expect(id(page, 'my-user-id')).toHaveAttribute('title', alice);
  await expect(id(page, 'room-name')).toHaveText('Book club');
  await expect(roomItem(page, 'Book club')).toHaveAttribute('data-room-id', roomId);
  await expect(sentMessage(page, 'Line one\nline two')).toBeVisible();
  expect(await bodies(page)).toEqual(before);
  expect(await imagesLoaded(page)).toBe(1);

  // The image viewer opens the same picture.
  await id(page, 'message-image').click();
  await expect(id(page, 'image-viewer').locator('img')).toHaveAttribute('src', /^blob:/);
  await id(page, 'image-viewer').getByTestId('dialog-close').click();
  await expect(id(page, 'image-viewer')).toHaveCount(0);
});

test('two accounts in one browser (two tabs): invite, accept, unread counts, replies both ways, typing, leave, decline', async ({ app, context }) => {
  const tab1 = await app(context);
  await signUp(tab1, 'Alice');
  await createRoom(tab1, 'Lobby');
  await createRoom(tab1, 'Planning');

  // The second tab opens as Alice (one browser, one account store), then switches to a new account.
  const tab2 = await app(context);
  await signedIn(tab2);
  await expect(id(tab2, 'my-name')).toHaveText('Alice');
  await openProfile(tab2);
  await id(tab2, 'switch-account').click();
  await expect(id(tab2, 'auth-screen')).toBeVisible();
  await expect(id(tab2, 'known-account')).toHaveCount(1);
  const bob = await signUp(tab2, 'Bob');
  // Tab 1 is still Alice.
  await expect(id(tab1, 'my-name')).toHaveText('Alice');

  // Alice invites Bob by username (the localpart; the server name is added).
  await id(tab1, 'toggle-members').click();
  await expect(id(tab1, 'member-panel')).toBeVisible();
  await id(tab1, 'invite-user-input').fill(bob.slice(1, bob.indexOf(':')));
  await id(tab1, 'invite-user-submit').click();
  await expect(id(tab1, 'invited-list').getByTestId('member-item')).toHaveAttribute('data-user-id', bob);
  await expect(id(tab1, 'state-event').filter({ hasText: 'Alice invited Bob' })).toBeVisible();

  const invite = id(tab2, 'invite-item');
  await expect(invite).toHaveAttribute('data-room-name', 'Planning');
  await expect(invite).toContainText('Invited by Alice');
  await invite.getByTestId('invite-accept').click();
  await expect(id(tab2, 'room-name')).toHaveText('Planning');
  await expect(id(tab2, 'invite-item')).toHaveCount(0);
  await expect(id(tab1, 'member-list').getByTestId('member-item')).toHaveCount(2);

  // Alice looks at another room; Bob writes twice: Planning shows 2 unread for Alice.
  await openRoom(tab1, 'Lobby');
  await say(tab2, 'hello Alice');
  await say(tab2, 'are you there?');
  await expect(roomItem(tab1, 'Planning')).toHaveAttribute('data-unread', '2');
  await expect(roomItem(tab1, 'Planning').getByTestId('room-unread')).toHaveText('2');
  await expect(roomItem(tab1, 'Planning')).toContainText('Bob: are you there?');

  // Opening the room reads it: the count goes away (and stays away after the next syncs).
  await openRoom(tab1, 'Planning');
  await expect(sentMessage(tab1, 'are you there?')).toBeVisible();
  await expect(roomItem(tab1, 'Planning')).toHaveAttribute('data-unread', '0');
  await say(tab1, 'yes! hi Bob');
  await expect(sentMessage(tab2, 'yes! hi Bob')).toBeVisible();
  expect(await bodies(tab2)).toEqual(['hello Alice', 'are you there?', 'yes! hi Bob']);
  await openRoom(tab1, 'Lobby');
  await openRoom(tab1, 'Planning');
  await expect(roomItem(tab1, 'Planning')).toHaveAttribute('data-unread', '0');

  // Typing notifications.
  await id(tab2, 'composer-input').pressSequentially('thinking…');
  await expect(id(tab1, 'typing')).toHaveText('Bob is typing…');
  await id(tab2, 'composer-input').fill('');

  // Each tab keeps its own account across reloads.
  await tab1.reload();
  await tab2.reload();
  await Promise.all([waitControlled(tab1), waitControlled(tab2)]);
  await signedIn(tab1);
  await signedIn(tab2);
  await expect(id(tab1, 'my-name')).toHaveText('Alice');
  await expect(id(tab2, 'my-name')).toHaveText('Bob');
  await expect(id(tab2, 'room-name')).toHaveText('Planning');

  // Bob leaves; Alice sees it. Alice invites him again; he declines.
  await id(tab2, 'leave-room').click();
  await id(tab2, 'confirm-ok').click();
  await expect(roomItem(tab2, 'Planning')).toHaveCount(0);
  await expect(id(tab2, 'no-room')).toBeVisible();
  await expect(id(tab1, 'state-event').filter({ hasText: 'Bob left the room' })).toBeVisible();
  await id(tab1, 'toggle-members').click();
  await id(tab1, 'invite-user-input').fill(bob);
  await id(tab1, 'invite-user-submit').click();
  await id(tab2, 'invite-item').getByTestId('invite-decline').click();
  await expect(id(tab2, 'invite-item')).toHaveCount(0);
  await expect(id(tab1, 'state-event').filter({ hasText: 'Bob declined the invitation' })).toBeVisible();
});

test('public rooms: the directory with search, join by alias, profile name, logout and password login', async ({ app, context }) => {
  const tab1 = await app(context);
  await signUp(tab1, 'Alice');
  await createRoom(tab1, 'Open house', { public: true, alias: 'openhouse', topic: 'Everyone welcome' });
  await createRoom(tab1, 'Garden club', { public: true });
  await createRoom(tab1, 'Secret plans'); // private: not listed
  await say(tab1, 'nobody else can see this');

  const tab2 = await app(context);
  await signedIn(tab2);
  await openProfile(tab2);
  await id(tab2, 'switch-account').click();
  const carol = await signUp(tab2, 'Carol');

  // The directory lists the public rooms only; search narrows it.
  await id(tab2, 'open-directory').click();
  const results = id(tab2, 'directory-results').getByTestId('directory-room');
  await expect(results).toHaveCount(2);
  await expect(id(tab2, 'directory-results')).not.toContainText('Secret plans');
  await id(tab2, 'directory-search').fill('garden');
  await expect(results).toHaveCount(1);
  await expect(results).toHaveAttribute('data-room-name', 'Garden club');
  await id(tab2, 'directory-search').fill('no such room');
  await expect(results).toHaveCount(0);
  await expect(id(tab2, 'directory-status')).toContainText('No public rooms match');
  await id(tab2, 'directory-search').fill('garden');
  await results.getByTestId('directory-join').click();
  await expect(id(tab2, 'directory-dialog')).toHaveCount(0);
  await expect(id(tab2, 'room-name')).toHaveText('Garden club');

  // Join by alias (short form: this homeserver's name is added).
  await id(tab2, 'open-join-room').click();
  await id(tab2, 'join-room-input').fill('#openhouse');
  await id(tab2, 'join-room-submit').click();
  await expect(id(tab2, 'room-name')).toHaveText('Open house');
  await expect(id(tab2, 'room-topic')).toContainText('Everyone welcome');
  // A wrong alias is an error in the dialog, which stays open.
  await id(tab2, 'open-join-room').click();
  await id(tab2, 'join-room-input').fill('#nothing-here');
  await id(tab2, 'join-room-submit').click();
  await expect(id(tab2, 'dialog-error')).toBeVisible();
  await id(tab2, 'join-room-dialog').getByTestId('dialog-close').click();

  // Carol renames herself; Alice sees the new name.
  await openProfile(tab2);
  await id(tab2, 'profile-display-name').fill('Caroline');
  await id(tab2, 'profile-save').click();
  await expect(id(tab2, 'profile-saved')).toHaveText('Saved.');
  await expect(id(tab2, 'my-name')).toHaveText('Caroline');
  const username = (await id(tab2, 'profile-username').textContent())!;
  const password = await id(tab2, 'profile-password').inputValue();
  expect(password.length).toBeGreaterThanOrEqual(20);
  await id(tab2, 'profile-dialog').getByTestId('dialog-close').click();
  await expect(id(tab2, 'profile-dialog')).toHaveCount(0);
  await say(tab2, 'hi from Caroline');
  await openRoom(tab1, 'Open house');
  await expect(sentMessage(tab1, 'hi from Caroline')).toBeVisible();
  await expect(tab1.locator('[data-testid="message"]').filter({ hasText: 'hi from Caroline' }).getByTestId('message-sender')).toHaveText('Caroline');
  await id(tab1, 'toggle-members').click();
  await expect(id(tab1, 'member-list').locator(`[data-user-id="${carol}"]`)).toContainText('Caroline');

  // Logout: the token stops working; sign in again with the username and password.
  const token = await chatToken(tab2);
  await openProfile(tab2);
  await id(tab2, 'logout').click();
  await expect(id(tab2, 'auth-screen')).toBeVisible();
  expect((await mx(tab2, 'GET', '/_matrix/client/v3/account/whoami', { token })).status).toBe(401);
  await id(tab2, 'show-login').click();
  await id(tab2, 'login-username').fill(username);
  await id(tab2, 'login-password').fill('wrong password');
  await id(tab2, 'login-submit').click();
  await expect(id(tab2, 'auth-error')).toContainText('Wrong username or password');
  await id(tab2, 'login-password').fill(password);
  await id(tab2, 'login-submit').click();
  await signedIn(tab2);
  await expect(id(tab2, 'my-name')).toHaveText('Caroline');
  await expect(roomItem(tab2, 'Open house')).toBeVisible();
  await expect(roomItem(tab2, 'Garden club')).toBeVisible();

  // After a logout, a remembered account signs in again with one click.
  await openProfile(tab2);
  await id(tab2, 'logout').click();
  await tab2.locator(`[data-testid="known-account"][data-user-id="${carol}"]`).getByTestId('account-continue').click();
  await signedIn(tab2);
  await expect(id(tab2, 'my-user-id')).toHaveAttribute('title', carol);
});

test('history: older messages page in on scroll-up and with the button, up to the start of the room', async ({ app }) => {
  const page = await app();
  await signUp(page, 'Dana');
  const roomId = await createRoom(page, 'Archive');
  const token = await chatToken(page);
  // 90 messages written straight through the API (as another client of this account would).
  for (let i = 1; i <= 90; i++) {
    await ok(mx(page, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/h${i}`, { token, body: { msgtype: 'm.text', body: `message ${i}` } }));
  }
  await expect(sentMessage(page, 'message 90')).toBeVisible();
  await page.reload();
  await waitControlled(page);
  await signedIn(page);
  await expect(sentMessage(page, 'message 90')).toBeVisible();
  const initial = await id(page, 'message').count();
  expect(initial).toBeLessThan(90);
  await expect(id(page, 'load-older')).toBeVisible();

  // Scroll up: older messages arrive above, the view keeps its place.
  await id(page, 'timeline').evaluate((el) => (el.scrollTop = 0));
  await expect.poll(() => id(page, 'message').count()).toBeGreaterThan(initial);
  expect(await id(page, 'timeline').evaluate((el) => el.scrollTop)).toBeGreaterThan(0);
  // The button, until the start.
  await expect(async () => {
    if (await id(page, 'load-older').isVisible()) await id(page, 'load-older').click({ timeout: 2_000 });
    await expect(id(page, 'timeline-start')).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(id(page, 'load-older')).toHaveCount(0);
  const all = await bodies(page);
  expect(all).toEqual(Array.from({ length: 90 }, (_, i) => `message ${i + 1}`));
  await expect(id(page, 'state-event').first()).toHaveText(/Dana created the room/);
});
