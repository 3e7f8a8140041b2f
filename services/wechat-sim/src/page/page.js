// The chat page: one citizen at a time; polls /sim/log for replies.
"use strict";
const $ = (id) => document.getElementById(id);
let openid = "";
let after = 0;
let info = { citizens: [], menu: null };

function citizen() { return ($("openid").value.trim() || $("citizens").value); }

async function post(url, body, type) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": type || "application/json" },
                                 body: type ? body : JSON.stringify(body) });
  if (!res.ok) note(await res.text());
}

function note(text) { render({ from: "note", text }); }

// An H5 link opens through /sim/open, so the sim's OAuth knows who is holding the phone.
function openUrl(url) { return "/sim/open?" + new URLSearchParams({ openid, url }); }

// Text replies may carry <a href="…">…</a> (WeChat renders those) and bare URLs.
function fill(el, text) {
  const re = /<a\s+href=["']([^"']+)["'][^>]*>([\s\S]*?)<\/a>|(https?:\/\/[^\s<>"']+)/g;
  let last = 0, m;
  while ((m = re.exec(text))) {
    el.append(text.slice(last, m.index));
    const a = document.createElement("a");
    const url = m[1] || m[3];
    a.textContent = m[2] || m[3];
    a.href = /^https?:/.test(url) ? openUrl(url) : url;
    a.target = "_blank";
    a.rel = "noopener";
    el.append(a);
    last = re.lastIndex;
  }
  el.append(text.slice(last));
}

function render(line) {
  const el = document.createElement("div");
  el.className = "line " + line.from;
  if (line.media_id) {
    const img = document.createElement("img");
    img.src = "/sim/pic/" + encodeURIComponent(line.media_id);
    img.alt = "图片";
    el.append(img);
  } else {
    fill(el, line.text);
  }
  $("log").append(el);
  $("log").scrollTop = $("log").scrollHeight;
}

async function poll() {
  if (openid) {
    try {
      const res = await fetch("/sim/log?" + new URLSearchParams({ openid, after }));
      if (res.ok) {
        for (const line of await res.json()) { render(line); after = line.seq; }
      }
    } catch (e) { /* the sim restarting; try again */ }
  }
  setTimeout(poll, 1000);
}

function switchTo(id) {
  if (id === openid) return;
  openid = id;
  after = 0;
  for (const el of document.querySelectorAll(".line")) el.remove();
  $("hint").hidden = false;
  document.cookie = "sim_openid=" + encodeURIComponent(id) + "; path=/; SameSite=Lax";
}

function clickButton(b) {
  $("submenu").hidden = true;
  if (b.type === "view" && b.url) {
    post("/sim/event", { openid: citizen(), event: "view", key: b.url });
    window.open(openUrl(b.url), "_blank", "noopener");
  } else if (b.key) {
    post("/sim/event", { openid: citizen(), event: "click", key: b.key });
  }
}

function drawMenu() {
  const nav = $("menu");
  nav.textContent = "";
  const buttons = (info.menu && info.menu.button) || [];
  for (const b of buttons) {
    const el = document.createElement("button");
    el.type = "button";
    el.textContent = (b.sub_button && b.sub_button.length ? "≡ " : "") + b.name;
    el.onclick = () => {
      const subs = b.sub_button || [];
      if (!subs.length) return clickButton(b);
      const box = $("submenu");
      box.textContent = "";
      for (const s of subs) {
        const item = document.createElement("button");
        item.type = "button";
        item.textContent = s.name;
        item.onclick = () => clickButton(s);
        box.append(item);
      }
      box.style.left = el.offsetLeft + "px";
      box.hidden = !box.hidden;
    };
    nav.append(el);
  }
}

async function loadInfo() {
  try {
    info = await (await fetch("/sim/info")).json();
  } catch (e) { return; }
  const sel = $("citizens");
  if (!sel.options.length) {
    for (const c of info.citizens) sel.append(new Option(c.label + "（" + c.openid + "）", c.openid));
    switchTo(sel.value);
  }
  drawMenu();
}

$("citizens").onchange = () => { $("openid").value = ""; switchTo(citizen()); };
$("openid").onchange = () => switchTo(citizen());
$("follow").onclick = () => { switchTo(citizen()); post("/sim/event", { openid, event: "subscribe" }); };
$("unfollow").onclick = () => { switchTo(citizen()); post("/sim/event", { openid, event: "unsubscribe" }); };
$("compose").onsubmit = (e) => {
  e.preventDefault();
  const text = $("text").value;
  if (!text.trim()) return;
  switchTo(citizen());
  $("hint").hidden = true;
  $("text").value = "";
  post("/sim/send", { openid, text });
};
$("photo").onchange = async () => {
  const file = $("photo").files[0];
  if (!file) return;
  switchTo(citizen());
  await post("/sim/image?" + new URLSearchParams({ openid }), file, file.type || "image/jpeg");
  $("photo").value = "";
};

loadInfo();
setInterval(loadInfo, 5000);
poll();
