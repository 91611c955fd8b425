"""A link to a web page opened without the token: the 401 page explains and signs you in.

Over real HTTP against the bot's web server (the test bed with WEB_AUTH_TOKEN set).
"""

from __future__ import annotations

import re

from bot.export.web import SESSION_COOKIE
from tests.web.conftest import TOKEN, url


async def test_the_401_page_explains_how_to_sign_in_and_its_form_does(web_bed, browser_like):
    assert "INC-1 opened" in await web_bed.run_command("open P1 checkout is failing")
    page = url(web_bed, "/incidents/INC-1/postmortem.html")
    async with browser_like.get(page) as resp:
        body = await resp.text()
    assert resp.status == 401 and "Sign-in needed" in body
    assert "web token" in body and "WEB_AUTH_TOKEN" in body and TOKEN not in body
    form = re.search(r'<form class="sign-in" method="post" action="([^"]+)">', body)
    assert form and form.group(1) == "/incidents/INC-1/postmortem.html"
    assert 'type="password" name="token"' in body

    async with browser_like.post(url(web_bed, form.group(1)), data={"token": "wrong"}) as resp:
        assert resp.status == 401 and "That token is not right." in await resp.text()
    assert not [c for c in browser_like.cookie_jar if c.key == SESSION_COOKIE]

    async with browser_like.post(url(web_bed, form.group(1)), data={"token": TOKEN},
                                 allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/incidents/INC-1/postmortem.html"
        assert "HttpOnly" in resp.headers["Set-Cookie"] and TOKEN not in resp.headers["Set-Cookie"]
    async with browser_like.get(page) as resp:  # signed in: the cookie opens every page
        assert resp.status == 200 and "INC-1: checkout is failing — post-mortem" in await resp.text()
    async with browser_like.get(url(web_bed, "/incidents")) as resp:
        assert resp.status == 200


async def test_a_filtered_list_keeps_its_filters_through_the_sign_in(web_bed, browser_like):
    async with browser_like.get(url(web_bed, "/incidents?state=open&severity=P1")) as resp:
        body = await resp.text()
    action = re.search(r'action="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert action == "/incidents?state=open&severity=P1"
    async with browser_like.post(url(web_bed, action), data={"token": TOKEN}) as resp:
        assert resp.status == 200 and str(resp.url).endswith("/incidents?state=open&severity=P1")
