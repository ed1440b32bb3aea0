#!/usr/bin/env python3
"""The API docs in a real browser, offline: Swagger UI at /docs and ReDoc at /redoc.

Starts the whole mesh (`flightmesh up`) on a fresh database, vhost and Redis prefix, signs a user
up through the REST API, then drives headless Chromium (`CHROMIUM`, else the Debian package
`chromium`, installed with apt-get when missing; `playwright-core` from npm, pinned, installed into
Cargo's target directory) through:

- /docs: Swagger UI renders the operations with their proto comments and the booking schema
  (`flightmesh.bookings.v1.Booking` with its `total_price` description); Authorize takes the
  bearer token; "Try it out" on GET /api/v1/auth/me sends it and shows 200 with the user;
- /redoc: ReDoc renders the same document;
- every request the pages make goes to the gateway itself (nothing from the internet).

    python3 scripts/docs_browser_check.py   (about 10 s with a built flightmesh)
    DOCS_CHECK_SCREENSHOT=/tmp/docs.png …   also saves screenshots of the pages
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from mesh_lib import apt_install, fresh_mesh, http, target_dir

PLAYWRIGHT = "1.65.2"

BROWSER_SCRIPT = r"""
const { chromium } = require('playwright-core');
const [base, token, email, chromiumPath] = process.argv.slice(2);
(async () => {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  const page = await browser.newPage();
  // Loaded from elsewhere than the gateway (blob: and data: URLs are the page's own).
  const foreign = [];
  const local = (url) => url.startsWith(base) || url.startsWith('blob:') || url.startsWith('data:');
  page.on('requestfinished', (r) => { if (!local(r.url())) foreign.push(r.url()); });
  const out = {};

  await page.goto(base + '/docs');
  await page.waitForSelector('.opblock', { timeout: 30000 });
  out.swaggerOperations = await page.locator('.opblock').count();
  out.bookingSummary = await page.locator('#operations-BookingService-CreateBooking .opblock-summary-description').innerText();

  // The booking schema, expanded in the Schemas section.
  const model = page.locator('.models .model-container', { hasText: 'flightmesh.bookings.v1.Booking' }).first();
  await model.scrollIntoViewIfNeeded();
  await model.locator('.model-box-control').first().click();
  const totalPrice = model.locator('tr.property-row', { hasText: 'total_price' }).first();
  await totalPrice.locator('.model-toggle, .model-box-control').first().click();
  await totalPrice.getByText('What the passenger pays').first().waitFor({ timeout: 10000 });
  out.bookingSchema = await model.innerText();
  if (process.env.DOCS_CHECK_SCREENSHOT) await page.screenshot({ path: process.env.DOCS_CHECK_SCREENSHOT + '.schema.png' });

  // Authorize with the bearer token, then call GET /api/v1/auth/me from the page.
  await page.locator('.auth-wrapper .authorize').click();
  const dialog = page.locator('.dialog-ux');
  await dialog.locator('input').first().fill(token);
  await dialog.locator('button.authorize').click();
  await dialog.locator('button.btn-done, button.close-modal').first().click();
  const me = page.locator('#operations-IdentityService-GetCurrentUser');
  await me.locator('.opblock-summary').click();
  if (process.env.DOCS_CHECK_SCREENSHOT) await page.screenshot({ path: process.env.DOCS_CHECK_SCREENSHOT, fullPage: false });
  // tryItOutEnabled: the form is open at once (its "Try it out" button reads "Cancel").
  await me.locator('button.execute').click();
  const live = me.locator('.live-responses-table tbody .response');
  await live.first().waitFor({ timeout: 15000 });
  out.meStatus = (await live.first().locator('.response-col_status').innerText()).trim();
  out.meBody = await live.first().locator('.response-col_description').innerText();
  out.curl = await me.locator('.curl-command').first().innerText().catch(() => '');

  await page.goto(base + '/redoc');
  await page.waitForSelector('h1', { timeout: 30000 });
  await page.waitForFunction(() => document.body.innerText.includes('Prices the booking and takes a seat.'), null, { timeout: 30000 });
  out.redocTitle = await page.locator('h1').first().innerText();
  out.foreign = foreign;
  await browser.close();
  console.log(JSON.stringify(out));
})().catch(async (err) => { console.error(err); process.exit(1); });
"""


def playwright_dir() -> str:
    prefix = target_dir() / f"playwright-core-{PLAYWRIGHT}"
    if not (prefix / "node_modules/playwright-core").is_dir():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent",
                        f"playwright-core@{PLAYWRIGHT}"], check=True)
    return str(prefix)


def main() -> int:
    chromium = os.environ.get("CHROMIUM") or apt_install("chromium", "chromium")
    modules = playwright_dir()
    failures = []
    with fresh_mesh("docs", 28000) as mesh:
        email = f"docs-{uuid.uuid4().hex[:8]}@example.com"
        status, user = http("POST", mesh.url("/api/v1/auth/register"),
                            {"email": email, "password": "docs-check-password", "full_name": "Docs Check"})
        if status != 200:
            raise SystemExit(f"docs-check: register answered {status}: {user}")
        status, login = http("POST", mesh.url("/api/v1/auth/login"),
                             {"email": email, "password": "docs-check-password"})
        if status != 200:
            raise SystemExit(f"docs-check: login answered {status}: {login}")
        script = mesh.work / "browser.js"
        script.write_text(BROWSER_SCRIPT)
        run = subprocess.run(
            ["node", str(script), f"http://{mesh.gateway}", login["access_token"], email, chromium],
            capture_output=True, text=True, timeout=180,
            env={**os.environ, "NODE_PATH": f"{modules}/node_modules"},
        )
        if run.returncode != 0:
            print(run.stdout, run.stderr, file=sys.stderr)
            raise SystemExit("docs-check: the browser run failed")
        seen = json.loads(run.stdout.strip().splitlines()[-1])

    def expect(ok: bool, what: str) -> None:
        print(f"docs-check: {'ok  ' if ok else 'FAIL'} {what}", file=sys.stderr)
        if not ok:
            failures.append(what)

    expect(seen["swaggerOperations"] >= 20, f"Swagger UI lists the operations ({seen['swaggerOperations']})")
    expect(seen["bookingSummary"] == "Prices the booking and takes a seat.",
           f"operation summaries come from the proto comments ({seen['bookingSummary']!r})")
    expect("total_price" in seen["bookingSchema"] and "What the passenger pays" in seen["bookingSchema"],
           "the Booking schema renders with its field descriptions")
    expect(seen["meStatus"] == "200", f"Authorize + Try it out: GET /api/v1/auth/me answered {seen['meStatus']}")
    expect(email in seen["meBody"], "the authorized request returned the signed-in user")
    expect("Authorization: Bearer" in seen["curl"], "the request carried the bearer token")
    expect(bool(seen["redocTitle"]), f"ReDoc renders ({seen['redocTitle']!r})")
    expect(seen["foreign"] == [], f"nothing loaded from outside the gateway {seen['foreign']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
