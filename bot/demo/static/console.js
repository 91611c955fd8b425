/* Firebreak demo console: renders the emulated workspace and sends what a person does.
 * Plain JavaScript, no build step. The server is bot/demo/console.py. */
(() => {
  "use strict";

  const CONFIG = window.FIREBREAK_CONSOLE;
  const $ = (selector, root = document) => root.querySelector(selector);
  const ui = {
    state: null,
    me: localStorage.getItem("firebreak.user") || CONFIG.default_user,
    channel: localStorage.getItem("firebreak.channel") || CONFIG.default_channel,
    expandedThreads: new Set(),
    threadTs: null,
    seen: {},            // channel id -> message count when last looked at
    lastHtml: {},        // region -> last HTML, to leave unchanged regions (and open selects) alone
    viewKey: null,       // id+hash of the modal on screen
    viewErrors: {},
    openRequests: new Set(),
    history: [],
    historyAt: -1,
  };
  if (!CONFIG.users.some((u) => u.id === ui.me)) ui.me = CONFIG.default_user;

  // -- small helpers --------------------------------------------------------------------------

  const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const unentity = (value) => String(value ?? "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

  const EMOJI = {
    rotating_light: "🚨", eyes: "👀", white_check_mark: "✅", heavy_check_mark: "✔️", warning: "⚠️",
    fire: "🔥", pushpin: "📌", mega: "📣", loudspeaker: "📢", arrows_counterclockwise: "🔄",
    bust_in_silhouette: "👤", busts_in_silhouette: "👥", adhesive_bandage: "🩹",
    leftwards_arrow_with_hook: "↩️", tada: "🎉", no_entry: "⛔", no_entry_sign: "🚫", rocket: "🚀",
    hourglass: "⌛", hourglass_flowing_sand: "⏳", x: "❌", red_circle: "🔴", large_green_circle: "🟢",
    green_circle: "🟢", large_yellow_circle: "🟡", yellow_circle: "🟡", large_orange_circle: "🟠",
    orange_circle: "🟠", large_blue_circle: "🔵", blue_circle: "🔵", white_circle: "⚪", black_circle: "⚫",
    bell: "🔔", no_bell: "🔕", pager: "📟", rewind: "⏪", repeat: "🔁", stopwatch: "⏱️", clock1: "🕐",
    clipboard: "📋", memo: "📝", link: "🔗", page_facing_up: "📄", information_source: "ℹ️", sos: "🆘",
    construction: "🚧", heavy_plus_sign: "➕", arrow_right: "➡️", arrow_left: "⬅️", arrow_up: "⬆️",
    arrow_down: "⬇️", point_right: "👉", thumbsup: "👍", "+1": "👍", thumbsdown: "👎", ok: "🆗",
    zap: "⚡", boom: "💥", sparkles: "✨", wrench: "🔧", hammer_and_wrench: "🛠️", gear: "⚙️",
    chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉", calendar: "📅", phone: "📞",
    telephone_receiver: "📞", speech_balloon: "💬", lock: "🔒", key: "🔑", ambulance: "🚑",
    hospital: "🏥", stethoscope: "🩺", checkered_flag: "🏁", traffic_light: "🚦", vertical_traffic_light: "🚦",
    package: "📦", inbox_tray: "📥", outbox_tray: "📤", thinking_face: "🤔", question: "❓",
    exclamation: "❗", heavy_exclamation_mark: "❗", raising_hand: "🙋", wave: "👋", skull: "💀",
    siren: "🚨", hourglass_done: "⌛", large_red_square: "🟥", large_green_square: "🟩",
  };
  const emoji = (html) => html.replace(/:([a-z0-9_+\-]+):/g, (whole, name) => EMOJI[name] || whole);

  function compareTs(a, b) {
    const [as, au = "0"] = String(a).split(".");
    const [bs, bu = "0"] = String(b).split(".");
    return (Number(as) - Number(bs)) || (Number(au.padEnd(6, "0")) - Number(bu.padEnd(6, "0")));
  }
  const timeOf = (ts) => new Date(Number(String(ts).split(".")[0]) * 1000)
    .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function user(id) { return (ui.state?.users || []).find((u) => u.id === id); }
  function userName(id) { const u = user(id); return u ? u.name : id; }
  function userLabel(id) { const u = user(id); return u ? (u.is_bot ? "Firebreak" : u.real_name || u.name) : id; }
  function channelName(id) {
    const name = ui.state?.channel_names?.[id];
    return name ? (name.startsWith("dm-") ? "Firebreak (DM)" : name) : id;
  }
  function groupHandle(id) { const g = (ui.state?.usergroups || []).find((x) => x.id === id); return g ? g.handle : id; }

  // -- mrkdwn -------------------------------------------------------------------------------

  function special(inner) {
    const [target, label] = splitOnce(inner, "|");
    if (target.startsWith("@")) {
      const id = target.slice(1);
      return `<span class="mention" data-user="${esc(id)}">@${esc(user(id) ? userName(id) : (label || id))}</span>`;
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const name = ui.state?.channel_names?.[id] ? channelName(id) : (label || id);
      return `<a class="channel-link" data-channel="${esc(id)}">#${esc(name)}</a>`;
    }
    if (target.startsWith("!subteam^")) {
      return `<span class="mention">${esc(label || "@" + groupHandle(target.slice(9)))}</span>`;
    }
    if (target.startsWith("!date^")) return esc(unentity(label || target));
    if (target.startsWith("!")) return `<span class="mention">@${esc(target.slice(1))}</span>`;
    if (/^(https?:|mailto:)/i.test(target)) {
      const href = signedIn(unentity(target));
      return `<a href="${esc(href)}" target="_blank" rel="noopener">${esc(unentity(label || target))}</a>`;
    }
    return esc("<" + unentity(inner) + ">");
  }

  // A link to the bot's own web pages opens signed in: the console holds the web token
  // (a person in a real workspace signs in once on the page itself).
  function signedIn(href) {
    const link = ui.state?.bot_link;
    if (!link?.token || !(href === link.base_url || href.startsWith(link.base_url + "/"))) return href;
    const url = new URL(href);
    if (!url.searchParams.has("token")) url.searchParams.set("token", link.token);
    return url.toString();
  }

  function splitOnce(text, separator) {
    const at = text.indexOf(separator);
    return at < 0 ? [text, null] : [text.slice(0, at), text.slice(at + 1)];
  }

  function mrkdwn(text) {
    if (!text) return "";
    const slots = [];
    const keep = (html) => { slots.push(html); return `\u0000${slots.length - 1}\u0000`; };
    let s = String(text);
    s = s.replace(/```([\s\S]*?)```/g, (_, code) => keep(`<pre class="code">${esc(unentity(code))}</pre>`));
    s = s.replace(/`([^`\n]+)`/g, (_, code) => keep(`<code>${esc(unentity(code))}</code>`));
    s = s.replace(/<([^<>\n]+)>/g, (_, inner) => keep(special(inner)));
    s = esc(unentity(s));
    const edge = "(^|[\\s(\\u0000>])";
    const after = "(?=$|[\\s).,!?:;'\\u0000<])";
    s = s.replace(new RegExp(edge + "\\*([^*\\n]+?)\\*" + after, "g"), "$1<b>$2</b>");
    s = s.replace(new RegExp(edge + "_([^_\\n]+?)_" + after, "g"), "$1<i>$2</i>");
    s = s.replace(new RegExp(edge + "~([^~\\n]+?)~" + after, "g"), "$1<s>$2</s>");
    s = emoji(s);
    s = s.split("\n").map((line) => (line.startsWith("&gt;")
      ? `<blockquote>${line.replace(/^&gt; ?/, "")}</blockquote>` : line + "<br>")).join("");
    s = s.replace(/<br>$/, "");
    return s.replace(/\u0000(\d+)\u0000/g, (_, i) => slots[Number(i)]);
  }

  function textObject(obj) {
    if (!obj) return "";
    if (typeof obj === "string") return mrkdwn(obj);
    if (obj.type === "mrkdwn") return mrkdwn(obj.text);
    return obj.emoji === false ? esc(obj.text) : emoji(esc(obj.text));
  }
  const plain = (obj) => (obj && typeof obj === "object" ? obj.text : obj) || "";

  // -- Block Kit ----------------------------------------------------------------------------

  // ctx: {channel, ts} for a message, {view: id} for a modal
  function ctxAttrs(ctx) {
    return ctx.view ? `data-view="${esc(ctx.view)}"` : `data-channel="${esc(ctx.channel)}" data-ts="${esc(ctx.ts)}"`;
  }

  function optionList(element) {
    const options = [...(element.options || [])];
    for (const group of element.option_groups || []) options.push(...(group.options || []));
    return options;
  }

  function interactive(element, ctx, blockId) {
    const attrs = `${ctxAttrs(ctx)} data-action-id="${esc(element.action_id || "")}" data-block-id="${esc(blockId || "")}"`;
    switch (element.type) {
      case "button": {
        const style = element.style ? ` ${esc(element.style)}` : "";
        if (element.url && !element.action_id) {
          return `<a class="bk-button${style}" href="${esc(element.url)}" target="_blank" rel="noopener">${textObject(element.text)}</a>`;
        }
        return `<button type="button" class="bk-button${style}" data-action="button" ${attrs}
          data-value="${esc(element.value ?? "")}" data-url="${esc(element.url || "")}">${textObject(element.text)}</button>`;
      }
      case "static_select":
      case "external_select":
      case "overflow": {
        const placeholder = element.type === "overflow" ? "⋯" : plain(element.placeholder) || "Select…";
        const initial = element.initial_option?.value;
        const options = optionList(element).map((o) => `<option value="${esc(o.value)}"${o.value === initial ? " selected" : ""}>${esc(plain(o.text))}</option>`).join("");
        return `<select class="bk-select" data-action="select" ${attrs} aria-label="${esc(placeholder)}">
          <option value="" disabled${initial ? "" : " selected"}>${esc(placeholder)}</option>${options}</select>`;
      }
      case "users_select":
      case "conversations_select":
      case "channels_select": {
        const isUsers = element.type === "users_select";
        const items = isUsers
          ? (ui.state?.users || []).filter((u) => !u.is_bot).map((u) => [u.id, "@" + u.name])
          : (ui.state?.channels || []).filter((c) => !c.is_im).map((c) => [c.id, "#" + c.name]);
        const placeholder = plain(element.placeholder) || (isUsers ? "Select a person" : "Select a channel");
        return `<select class="bk-select" data-action="select" ${attrs}>
          <option value="" disabled selected>${esc(placeholder)}</option>
          ${items.map(([id, name]) => `<option value="${esc(id)}">${esc(name)}</option>`).join("")}</select>`;
      }
      case "datepicker":
        return `<input type="date" class="bk-select" data-action="select" ${attrs} value="${esc(element.initial_date || "")}">`;
      case "image":
        return `<a class="bk-image" href="${esc(element.image_url)}" target="_blank" rel="noopener">🖼 ${esc(element.alt_text || "image")}</a>`;
      default:
        return `<span class="bk-unsupported">[${esc(element.type)}]</span>`;
    }
  }

  function renderBlock(block, ctx) {
    switch (block.type) {
      case "header":
        return `<div class="bk-header">${textObject(block.text)}</div>`;
      case "section": {
        const text = block.text ? `<div>${textObject(block.text)}</div>` : "";
        const fields = block.fields ? `<div class="bk-fields">${block.fields.map((f) => `<div>${textObject(f)}</div>`).join("")}</div>` : "";
        const accessory = block.accessory ? `<div class="accessory">${interactive(block.accessory, ctx, block.block_id)}</div>` : "";
        return `<div class="bk-section"><div class="text">${text}${fields}</div>${accessory}</div>`;
      }
      case "context":
        return `<div class="bk-context">${(block.elements || []).map((e) => (e.type === "image"
          ? `<a href="${esc(e.image_url)}" target="_blank" rel="noopener">🖼 ${esc(e.alt_text || "image")}</a>`
          : `<span>${textObject(e)}</span>`)).join("")}</div>`;
      case "divider":
        return `<hr class="bk-divider">`;
      case "actions":
        return `<div class="bk-actions">${(block.elements || []).map((e) => interactive(e, ctx, block.block_id)).join("")}</div>`;
      case "image":
        return `<div class="bk-image"><a href="${esc(block.image_url)}" target="_blank" rel="noopener">🖼 ${esc(plain(block.title) || block.alt_text || "image")}</a></div>`;
      case "rich_text":
        return `<div>${(block.elements || []).map(richText).join("")}</div>`;
      case "markdown":
        return `<div>${mrkdwn(block.text)}</div>`;
      case "file":
        return `<div class="bk-unsupported">[file ${esc(block.external_id || "")}]</div>`;
      default:
        return `<div class="bk-unsupported">[${esc(block.type)} block]</div>`;
    }
  }

  function richInline(el) {
    switch (el.type) {
      case "text": {
        let html = esc(el.text).replace(/\n/g, "<br>");
        const st = el.style || {};
        if (st.code) html = `<code>${html}</code>`;
        if (st.bold) html = `<b>${html}</b>`;
        if (st.italic) html = `<i>${html}</i>`;
        if (st.strike) html = `<s>${html}</s>`;
        return html;
      }
      case "link": return `<a href="${esc(el.url)}" target="_blank" rel="noopener">${esc(el.text || el.url)}</a>`;
      case "user": return special("@" + el.user_id);
      case "channel": return special("#" + el.channel_id);
      case "usergroup": return special("!subteam^" + el.usergroup_id);
      case "emoji": return EMOJI[el.name] || `:${esc(el.name)}:`;
      case "broadcast": return `<span class="mention">@${esc(el.range)}</span>`;
      default: return "";
    }
  }

  function richText(el) {
    const inline = (items) => (items || []).map(richInline).join("");
    switch (el.type) {
      case "rich_text_section": return `<div>${inline(el.elements)}</div>`;
      case "rich_text_preformatted": return `<pre class="code">${inline(el.elements)}</pre>`;
      case "rich_text_quote": return `<blockquote>${inline(el.elements)}</blockquote>`;
      case "rich_text_list": {
        const tag = el.style === "ordered" ? "ol" : "ul";
        return `<${tag}>${(el.elements || []).map((item) => `<li>${inline(item.elements)}</li>`).join("")}</${tag}>`;
      }
      default: return "";
    }
  }

  function renderAttachment(att, ctx) {
    const color = att.color ? ` style="border-left-color:${esc(att.color.startsWith("#") ? att.color : "#" + att.color)}"` : "";
    const parts = [];
    if (att.pretext) parts.push(`<div>${mrkdwn(att.pretext)}</div>`);
    if (att.title) parts.push(`<div><b>${esc(att.title)}</b></div>`);
    if (att.text) parts.push(`<div>${mrkdwn(att.text)}</div>`);
    if (att.fields) parts.push(`<div class="bk-fields">${att.fields.map((f) => `<div><b>${esc(f.title)}</b><br>${mrkdwn(f.value)}</div>`).join("")}</div>`);
    if (att.blocks) parts.push(att.blocks.map((b) => renderBlock(b, ctx)).join(""));
    if (att.footer) parts.push(`<div class="bk-context">${mrkdwn(att.footer)}</div>`);
    return `<div class="attachment"${color}>${parts.join("")}</div>`;
  }

  // -- messages -----------------------------------------------------------------------------

  function isPinned(message, channel) {
    return (message.pinned_to || []).includes(channel.id) || (channel.pins || []).includes(message.ts);
  }

  function systemLine(message) {
    const who = `<b>${esc(userLabel(message.user))}</b>`;
    if (message.subtype === "channel_join") return `${who} joined the channel`;
    if (message.subtype === "channel_topic") return `${who} set the channel topic: ${mrkdwn(message.topic || message.text.replace(/^.*?set the channel topic: /, ""))}`;
    if (message.subtype === "channel_purpose") return `${who} set the channel description`;
    return mrkdwn(message.text);
  }

  function renderMessage(message, channel, { ephemeral = false, replies = [], inThread = false } = {}) {
    if (!ephemeral && message.subtype && message.subtype.startsWith("channel_")) {
      return `<div class="msg system" data-ts="${esc(message.ts)}">${systemLine(message)}</div>`;
    }
    const ctx = { channel: channel.id, ts: message.ts };
    const isBot = Boolean(message.bot_id) || message.user === ui.state.bot_user_id || ephemeral;
    const author = isBot ? "Firebreak" : userLabel(message.user);
    const pinned = !ephemeral && isPinned(message, channel);
    const classes = ["msg", ephemeral ? "ephemeral" : "", pinned ? "pinned" : ""].filter(Boolean).join(" ");
    const blocks = message.blocks && message.blocks.length
      ? message.blocks.map((b) => renderBlock(b, ctx)).join("")
      : `<div>${mrkdwn(message.text)}</div>`;
    const attachments = (message.attachments || []).map((a) => renderAttachment(a, ctx)).join("");
    const files = (message.files || []).map((f) => `<div class="file"><span class="icon">📄</span>
      <span><a class="fname" href="${esc(f.console_url || "#")}" download="${esc(f.name)}" data-file="${esc(f.id)}">${esc(f.title || f.name)}</a>
      <br><span class="ftype">${esc(f.pretty_type || f.filetype || "")} · ${esc(f.size ?? "")} bytes ·
      <a href="${esc(f.console_url || "#")}?view=1" target="_blank" rel="noopener">view</a></span></span></div>`).join("");
    const reactions = (message.reactions || []).map((r) => `<span class="reaction" title="${esc((r.users || []).map(userName).join(", "))}">${EMOJI[r.name] || ":" + esc(r.name) + ":"} ${r.count}</span>`).join("");
    let thread = "";
    if (!inThread && replies.length) {
      const open = ui.expandedThreads.has(message.ts);
      thread = `<button type="button" class="thread-toggle" data-thread="${esc(message.ts)}">${open ? "Hide" : replies.length} ${replies.length === 1 && !open ? "reply" : (open ? "thread" : "replies")}</button>`;
      if (open) {
        thread += `<div class="thread">${replies.map((r) => renderMessage(r.message, channel, { ephemeral: r.ephemeral, inThread: true })).join("")}</div>`;
      }
    }
    const actions = ephemeral ? "" : `<div class="msg-actions">
      ${pinned ? "" : `<button type="button" data-pin="${esc(message.ts)}" title="Pin to channel">📌 Pin</button>`}
      <button type="button" data-react="${esc(message.ts)}" title="React with :pushpin:">+ :pushpin:</button>
      ${inThread ? "" : `<button type="button" data-reply="${esc(message.ts)}" title="Reply in thread">Reply</button>`}</div>`;
    return `<div class="${classes}" data-ts="${esc(message.ts)}">
      <div class="avatar${isBot ? " bot" : ""}">${esc(author.slice(0, 1).toUpperCase())}</div>
      <div class="msg-body">
        <div class="meta"><span class="author">${esc(author)}</span>${isBot ? '<span class="app-badge">APP</span>' : ""}
          <time title="${esc(message.ts)}">${timeOf(message.ts)}</time>
          ${pinned ? '<span class="pin-marker">📌 Pinned</span>' : ""}
          ${ephemeral ? '<span class="only-you">Only visible to you</span>' : ""}
          ${message.edited ? '<span class="edited">(edited)</span>' : ""}</div>
        <div class="content">${blocks}${attachments}</div>
        ${files ? `<div class="files">${files}</div>` : ""}
        ${reactions ? `<div class="reactions">${reactions}</div>` : ""}
        ${thread}
      </div>${actions}</div>`;
  }

  function renderMessages(channel) {
    if (!channel) return `<div class="empty-channel">Pick a channel.</div>`;
    const ephemerals = ui.state.ephemerals.filter((e) => e.channel === channel.id)
      .map((e) => ({ ts: e.ts, text: e.text, blocks: e.blocks, thread_ts: e.thread_ts }));
    const replies = new Map();
    const top = [];
    for (const message of channel.messages) {
      const isReply = message.thread_ts && message.thread_ts !== message.ts;
      if (isReply) {
        if (!replies.has(message.thread_ts)) replies.set(message.thread_ts, []);
        replies.get(message.thread_ts).push({ message, ephemeral: false });
        if (message.subtype === "thread_broadcast") top.push({ message, ephemeral: false });
      } else {
        top.push({ message, ephemeral: false });
      }
    }
    for (const e of ephemerals) {
      if (e.thread_ts && channel.messages.some((m) => m.ts === e.thread_ts)) {
        if (!replies.has(e.thread_ts)) replies.set(e.thread_ts, []);
        replies.get(e.thread_ts).push({ message: e, ephemeral: true });
      } else {
        top.push({ message: e, ephemeral: true });
      }
    }
    top.sort((a, b) => compareTs(a.message.ts, b.message.ts));
    // The bot re-sets the topic as the incident changes: show a repeated notice once.
    const isNotice = (item) => !item.ephemeral && (item.message.subtype || "").startsWith("channel_");
    const shown = top.filter((item, i) => !(i > 0 && isNotice(item) && isNotice(top[i - 1])
      && item.message.subtype === top[i - 1].message.subtype && item.message.text === top[i - 1].message.text));
    top.length = 0;
    top.push(...shown);
    for (const list of replies.values()) list.sort((a, b) => compareTs(a.message.ts, b.message.ts));
    if (!top.length) return `<div class="empty-channel">No messages in ${channel.is_im ? "this conversation" : "#" + esc(channel.name)} yet.</div>`;
    return top.map((item) => renderMessage(item.message, channel, {
      ephemeral: item.ephemeral, replies: item.ephemeral ? [] : (replies.get(item.message.ts) || []),
    })).join("");
  }

  // -- regions ------------------------------------------------------------------------------

  function setHtml(region, element, html) {
    if (ui.lastHtml[region] === html) return false;
    ui.lastHtml[region] = html;
    element.innerHTML = html;
    return true;
  }

  function currentChannel() {
    return ui.state.channels.find((c) => c.id === ui.channel);
  }

  function renderSidebar() {
    const channels = ui.state.channels;
    for (const c of channels) {
      if (!(c.id in ui.seen)) ui.seen[c.id] = ui.initialised ? 0 : c.messages.length;
    }
    const current = currentChannel();
    if (current) ui.seen[current.id] = current.messages.length;
    const item = (c) => {
      const unread = c.id === ui.channel ? 0 : Math.max(0, c.messages.length - (ui.seen[c.id] || 0));
      const label = c.is_im ? "Firebreak" : c.name;
      const icon = c.is_im ? "●" : (c.is_private ? "🔒" : "#");
      const marks = (c.incident_key ? " 🔥" : "") + (c.is_announce ? " 📣" : "");
      const classes = ["channel-item", c.id === ui.channel ? "active" : "", unread ? "unread" : "",
        !c.is_im && !c.is_member ? "not-member" : ""].filter(Boolean).join(" ");
      return `<button type="button" class="${classes}" data-goto="${esc(c.id)}" data-channel-name="${esc(label)}">
        <span class="hash">${icon}</span><span class="label">${esc(label)}${marks}</span>
        ${unread ? `<span class="badge">${unread}</span>` : ""}</button>`;
    };
    const normal = channels.filter((c) => !c.is_im && !c.incident_key).sort((a, b) => a.name.localeCompare(b.name));
    const incidents = channels.filter((c) => c.incident_key).sort((a, b) => b.created - a.created);
    const dms = channels.filter((c) => c.is_im);
    let html = `<h3>Channels</h3>${normal.map(item).join("")}`;
    if (incidents.length) html += `<h3>Incident channels</h3>${incidents.map(item).join("")}`;
    html += `<h3>Direct messages</h3>${dms.length ? dms.map(item).join("") : '<div class="channel-item not-member"><span class="hash">●</span><span class="label">Firebreak — pages arrive here</span></div>'}`;
    setHtml("channels", $("#channel-list"), html);

    const pages = ui.state.bot_pages || [];
    setHtml("pages", $("#bot-pages"), pages.length
      ? `<div class="title">The bot's web pages</div>${pages.map((p) => `<a href="${esc(p.url)}" target="_blank" rel="noopener">${esc(p.title)} ↗</a>`).join("")}`
      : `<div class="title">The bot's web pages</div><span class="muted">not served by this build</span>`);
  }

  function renderHeader(channel) {
    if (!channel) { setHtml("header", $("#channel-header"), ""); setHtml("bookmarks", $("#bookmarks"), ""); return; }
    const name = channel.is_im ? "Firebreak" : "#" + channel.name;
    const topic = channel.is_im ? "Your direct messages with the Firebreak app: pages arrive here"
      : (channel.topic?.value ? mrkdwn(channel.topic.value) : (channel.purpose?.value ? esc(channel.purpose.value) : ""));
    const links = (channel.incident_links || []).map((l) => `<a href="${esc(l.url)}" target="_blank" rel="noopener" data-incident-link="${esc(l.title)}">${esc(l.title)} ↗</a>`).join("");
    const pins = (channel.pins || []).length;
    setHtml("header", $("#channel-header"), `<div class="facts">${links}
      ${pins ? `<span title="pinned messages">📌 ${pins}</span>` : ""}
      <span title="members">👤 ${channel.members.length}</span></div>
      <div class="name">${esc(name)}${channel.incident_key ? ` <span class="muted">· ${esc(channel.incident_key)}</span>` : ""}</div>
      <div class="topic">${topic}</div>`);
    const bookmarks = (channel.bookmarks || []).map((b) => `<a href="${esc(b.link)}" target="_blank" rel="noopener">🔖 ${esc(b.title)}</a>`).join("");
    setHtml("bookmarks", $("#bookmarks"), bookmarks);
    $("#composer-input").placeholder = channel.is_im
      ? "Message Firebreak, or type /incident or /rollback"
      : `Message #${channel.name}, or type /incident or /rollback`;
  }

  function renderChannel() {
    const channel = currentChannel();
    renderHeader(channel);
    const box = $("#messages");
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const changed = setHtml("messages:" + ui.channel, box, renderMessages(channel));
    if (changed) {
      for (const key of Object.keys(ui.lastHtml)) if (key.startsWith("messages:") && key !== "messages:" + ui.channel) delete ui.lastHtml[key];
      if (nearBottom || ui.scrollToEnd) box.scrollTop = box.scrollHeight;
      ui.scrollToEnd = false;
    }
  }

  function renderPanel() {
    const world = ui.state.world;
    if (!world) { setHtml("services", $("#services"), '<span class="muted">no simulated services</span>'); return; }
    const rows = world.services.map((s) => {
      const health = s.healthy === true ? '<span class="health ok">200 healthy</span>'
        : s.healthy === false ? '<span class="health failing">500 failing</span>'
          : '<span class="health unknown">unknown</span>';
      return `<tr data-service="${esc(s.name)}" data-healthy="${s.healthy}"><td><b>${esc(s.name)}</b><br><span class="muted">${esc(s.provider)}</span></td>
        <td class="live" title="live deploy">${esc(s.live || "—")}</td><td>${health}</td></tr>`;
    }).join("");
    const skipped = Object.entries(world.skipped || {}).map(([name, why]) => `<div class="muted">${esc(name)}: ${esc(why)}</div>`).join("");
    setHtml("services", $("#services"), `<table class="services">${rows}</table>${skipped}`);

    const pd = world.pagerduty.map((i) => `<div class="pager-item" data-pager="pagerduty"><b>PagerDuty</b>
      <span class="state ${esc(i.status)}">${esc(i.status)}</span> ${esc(i.summary)}<br>
      <span class="muted">dedup_key ${esc(i.dedup_key)} · ${esc(i.severity)} · ${esc(i.actions.join(" → "))}</span></div>`);
    const og = world.opsgenie.map((a) => `<div class="pager-item" data-pager="opsgenie"><b>Opsgenie</b>
      <span class="state ${a.acknowledged && a.status === "open" ? "acknowledged" : esc(a.status)}">${a.acknowledged && a.status === "open" ? "acknowledged" : esc(a.status)}</span>
      ${esc(a.message)}<br><span class="muted">alias ${esc(a.alias)} · <span class="priority" title="${esc(a.priority_note || "")}">priority ${esc(a.priority_note || a.priority)}</span> · ×${a.count}</span></div>`);
    setHtml("pagers", $("#pagers"), [...pd, ...og].join("") || '<span class="muted">No pages yet. A P0 or P1 incident pages PagerDuty and Opsgenie.</span>');

    const showHealth = $("#show-health").checked;
    const requests = ui.state.requests.filter((r) => showHealth || !r.health_check).slice().reverse();
    const html = requests.map((r) => {
      const klass = "s" + String(r.status).slice(0, 1);
      const body = (text) => { try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; } };
      return `<details class="req" data-request="${r.id}" data-target="${esc(r.target)}"${ui.openRequests.has(r.id) ? " open" : ""}>
        <summary><span class="target ${esc(r.target)}">${esc(r.target)}</span>
        <span class="path">${esc(r.method)} ${esc(r.path)}${r.query ? "?" + esc(r.query) : ""}</span>
        <span class="code ${klass}">${esc(r.status)}</span><time>${esc(new Date(r.at).toLocaleTimeString())}</time></summary>
        ${r.request_body ? `<div class="muted">request</div><pre>${esc(body(r.request_body))}</pre>` : ""}
        ${r.response_body ? `<div class="muted">response</div><pre>${esc(body(r.response_body))}</pre>` : ""}</details>`;
    }).join("");
    setHtml("requests", $("#requests"), html || '<span class="muted">Nothing yet: rollbacks, health checks and pages show up here.</span>');
  }

  // -- modal --------------------------------------------------------------------------------

  function inputElement(element, blockId) {
    const attrs = `data-input="1" data-block-id="${esc(blockId)}" data-action-id="${esc(element.action_id || "")}" data-type="${esc(element.type)}"`;
    const placeholder = esc(plain(element.placeholder));
    switch (element.type) {
      case "plain_text_input":
        return element.multiline
          ? `<textarea rows="4" ${attrs} placeholder="${placeholder}" maxlength="${element.max_length || ""}">${esc(element.initial_value || "")}</textarea>`
          : `<input type="text" ${attrs} placeholder="${placeholder}" value="${esc(element.initial_value || "")}"${element.max_length ? ` maxlength="${element.max_length}"` : ""}>`;
      case "number_input":
        return `<input type="number" ${attrs} value="${esc(element.initial_value || "")}" step="${element.is_decimal_allowed ? "any" : "1"}">`;
      case "email_text_input":
        return `<input type="email" ${attrs} value="${esc(element.initial_value || "")}">`;
      case "url_text_input":
        return `<input type="url" ${attrs} value="${esc(element.initial_value || "")}">`;
      case "datepicker":
        return `<input type="date" ${attrs} value="${esc(element.initial_date || "")}">`;
      case "timepicker":
        return `<input type="time" ${attrs} value="${esc(element.initial_time || "")}">`;
      case "static_select":
      case "external_select":
      case "multi_static_select":
      case "multi_external_select": {
        const multi = element.type.startsWith("multi_");
        const initial = new Set(multi ? (element.initial_options || []).map((o) => o.value) : [element.initial_option?.value]);
        const options = optionList(element).map((o) => `<option value="${esc(o.value)}"${initial.has(o.value) ? " selected" : ""}>${esc(plain(o.text))}</option>`).join("");
        return `<select ${attrs}${multi ? " multiple" : ""}>${multi ? "" : `<option value=""${initial.has(undefined) ? " selected" : ""}>${placeholder || "Select…"}</option>`}${options}</select>`;
      }
      case "users_select":
      case "multi_users_select": {
        const multi = element.type.startsWith("multi_");
        const initial = new Set(multi ? element.initial_users || [] : [element.initial_user]);
        const options = (ui.state.users || []).filter((u) => !u.is_bot).map((u) => `<option value="${esc(u.id)}"${initial.has(u.id) ? " selected" : ""}>@${esc(u.name)}</option>`).join("");
        return `<select ${attrs}${multi ? " multiple" : ""}>${multi ? "" : `<option value="">${placeholder || "Select a person"}</option>`}${options}</select>`;
      }
      case "conversations_select":
      case "channels_select":
      case "multi_conversations_select":
      case "multi_channels_select": {
        const multi = element.type.startsWith("multi_");
        const initial = new Set([element.initial_conversation, element.initial_channel, ...(element.initial_conversations || []), ...(element.initial_channels || [])]);
        const options = ui.state.channels.filter((c) => !c.is_im).map((c) => `<option value="${esc(c.id)}"${initial.has(c.id) ? " selected" : ""}>#${esc(c.name)}</option>`).join("");
        return `<select ${attrs}${multi ? " multiple" : ""}>${multi ? "" : `<option value="">${placeholder || "Select a channel"}</option>`}${options}</select>`;
      }
      case "checkboxes":
      case "radio_buttons": {
        const type = element.type === "checkboxes" ? "checkbox" : "radio";
        const initial = new Set([element.initial_option?.value, ...(element.initial_options || []).map((o) => o.value)]);
        return `<div ${attrs}>${(element.options || []).map((o) => `<label class="choice"><input type="${type}" name="${esc(blockId)}" value="${esc(o.value)}"${initial.has(o.value) ? " checked" : ""}> ${textObject(o.text)}</label>`).join("")}</div>`;
      }
      default:
        return `<div class="bk-unsupported" ${attrs}>[${esc(element.type)} input]</div>`;
    }
  }

  function renderModal() {
    const view = ui.state.view;
    const root = $("#modal-root");
    const key = view ? view.id + ":" + view.hash : null;
    if (key === ui.viewKey) { renderViewErrors(); return; }
    ui.viewKey = key;
    if (!view) { root.innerHTML = ""; ui.viewErrors = {}; return; }
    ui.viewErrors = {};
    const ctx = { view: view.id };
    const body = (view.blocks || []).map((block, index) => {
      if (block.type !== "input") return renderBlock(block, ctx);
      const blockId = block.block_id || `input-${index}`;
      return `<div class="input-block" data-block="${esc(blockId)}">
        <label>${esc(plain(block.label))}${block.optional ? ' <span class="optional">(optional)</span>' : ""}</label>
        ${inputElement(block.element || {}, blockId)}
        ${block.hint ? `<div class="hint">${esc(plain(block.hint))}</div>` : ""}
        <div class="error" hidden></div></div>`;
    }).join("");
    root.innerHTML = `<div class="overlay"><form class="modal" role="dialog" aria-modal="true" aria-label="${esc(plain(view.title))}" data-view-id="${esc(view.id)}">
      <header>${esc(plain(view.title))}<button type="button" data-close-view aria-label="Close">×</button></header>
      <div class="modal-body">${body}</div>
      <footer><button type="button" data-close-view>${esc(plain(view.close) || "Cancel")}</button>
      ${view.submit ? `<button type="submit" class="submit">${esc(plain(view.submit))}</button>` : ""}</footer></form></div>`;
    const first = root.querySelector("[data-input]");
    if (first && first.focus) first.focus();
  }

  function renderViewErrors() {
    for (const block of document.querySelectorAll("#modal-root .input-block")) {
      const message = ui.viewErrors[block.dataset.block];
      const box = block.querySelector(".error");
      block.classList.toggle("has-error", Boolean(message));
      box.hidden = !message;
      box.textContent = message || "";
    }
  }

  function collectViewValues() {
    const values = {};
    for (const el of document.querySelectorAll("#modal-root [data-input]")) {
      const blockId = el.dataset.blockId;
      const actionId = el.dataset.actionId;
      const type = el.dataset.type;
      const option = (value) => {
        const block = (ui.state.view.blocks || []).find((b, i) => (b.block_id || `input-${i}`) === blockId);
        const found = optionList(block?.element || {}).find((o) => o.value === value) || (block?.element?.options || []).find((o) => o.value === value);
        return found ? { text: found.text, value: found.value } : { text: { type: "plain_text", text: value }, value };
      };
      let entry = { type };
      if (["plain_text_input", "number_input", "email_text_input", "url_text_input"].includes(type)) {
        entry.value = el.value === "" ? null : el.value;
      } else if (type === "datepicker") entry.selected_date = el.value || null;
      else if (type === "timepicker") entry.selected_time = el.value || null;
      else if (type === "static_select" || type === "external_select") entry.selected_option = el.value ? option(el.value) : null;
      else if (type === "multi_static_select" || type === "multi_external_select") entry.selected_options = [...el.selectedOptions].map((o) => option(o.value));
      else if (type === "users_select") entry.selected_user = el.value || null;
      else if (type === "multi_users_select") entry.selected_users = [...el.selectedOptions].map((o) => o.value);
      else if (type === "conversations_select") entry.selected_conversation = el.value || null;
      else if (type === "channels_select") entry.selected_channel = el.value || null;
      else if (type === "multi_conversations_select") entry.selected_conversations = [...el.selectedOptions].map((o) => o.value);
      else if (type === "multi_channels_select") entry.selected_channels = [...el.selectedOptions].map((o) => o.value);
      else if (type === "checkboxes") entry.selected_options = [...el.querySelectorAll("input:checked")].map((i) => option(i.value));
      else if (type === "radio_buttons") { const on = el.querySelector("input:checked"); entry.selected_option = on ? option(on.value) : null; }
      else entry = null;
      if (entry) (values[blockId] ||= {})[actionId] = entry;
    }
    return values;
  }

  // -- the server ---------------------------------------------------------------------------

  async function api(path, body) {
    const response = await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    let data;
    try { data = await response.json(); } catch { data = { ok: false, error: `HTTP ${response.status}` }; }
    if (!response.ok && data.ok === undefined) data.ok = false;
    return data;
  }

  function showAck(ok, text) {
    const box = $("#ack");
    box.className = ok ? "ok" : "error";
    box.textContent = text;
  }

  // The status line leads with the outcome, then names what was sent, whole: a command such as
  // "/incident note Error rate is down" must never read as an error.
  function describeDelivery(what, result) {
    if (result.error && result.status === undefined) return [false, `Not sent: ${what}: ${result.error}`];
    if (result.error) return [false, `Refused: ${what}: ${result.error}`];
    if (!result.ok) return [false, `Refused: ${what}: the bot answered HTTP ${result.status}`];
    const ack = result.ack_text ? ` — “${result.ack_text.length > 140 ? result.ack_text.slice(0, 140) + "…" : result.ack_text}”` : "";
    return [true, `Delivered ${what}: signed, sent to /slack/events and acknowledged with HTTP ${result.status} in ${Math.round(result.elapsed_ms)} ms${ack}`];
  }

  let refreshing = false;
  let refreshAgain = false;
  let refreshTimer = null;

  function scheduleRefresh(delay = 40) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, delay);
  }

  async function refresh() {
    if (refreshing) { refreshAgain = true; return; }
    refreshing = true;
    try {
      const response = await fetch(`/api/state?user=${encodeURIComponent(ui.me)}`);
      if (response.ok) {
        ui.state = await response.json();
        render();
      }
    } catch (error) {
      setLive(false);
    } finally {
      refreshing = false;
      if (refreshAgain) { refreshAgain = false; scheduleRefresh(0); }
    }
  }

  function render() {
    if (!currentChannel()) ui.channel = CONFIG.default_channel;
    renderSidebar();
    renderChannel();
    renderPanel();
    renderModal();
    ui.initialised = true;
    document.body.dataset.ready = "1";
  }

  function setLive(on) {
    const dot = $("#live-dot");
    dot.classList.toggle("on", on);
    dot.classList.toggle("off", !on);
    dot.title = on ? "live updates: connected" : "live updates: reconnecting…";
  }

  function connect() {
    const stream = new EventSource("/api/stream");
    stream.addEventListener("hello", () => { setLive(true); scheduleRefresh(0); });
    stream.addEventListener("change", () => scheduleRefresh());
    stream.onerror = () => setLive(false);
    stream.onopen = () => setLive(true);
  }

  // -- what a person does -------------------------------------------------------------------

  function goTo(channelId) {
    ui.channel = channelId;
    ui.threadTs = null;
    updateThreadReply();
    localStorage.setItem("firebreak.channel", channelId);
    ui.scrollToEnd = true;
    render();
    $("#composer-input").focus();
  }

  function updateThreadReply() {
    const box = $("#thread-reply");
    box.hidden = !ui.threadTs;
    box.innerHTML = ui.threadTs ? `Replying in a thread <button type="button" data-cancel-thread>cancel</button>` : "";
  }

  async function send(text) {
    const line = text.trim();
    if (!line) return;
    const input = $("#composer-input");
    input.disabled = true;
    try {
      const result = await api("/api/command", { user: ui.me, channel: ui.channel, text: line, thread_ts: ui.threadTs });
      if (result.kind === "command") {
        const [ok, message] = describeDelivery(`“${line.length > 300 ? line.slice(0, 300) + "…" : line}”`, result);
        showAck(ok, message);
      } else if (result.ok) {
        showAck(true, "message posted; the bot got a message event");
      } else {
        showAck(false, result.error || "not sent");
      }
      if (result.ok !== false || result.kind === "command") {
        ui.history.unshift(line);
        ui.historyAt = -1;
        input.value = "";
        autosize(input);
      }
      ui.scrollToEnd = true;
      scheduleRefresh(0);
    } finally {
      input.disabled = false;
      input.focus();
    }
  }

  function findElement(button) {
    const actionId = button.dataset.actionId;
    let blocks = [];
    if (button.dataset.view) blocks = ui.state.view?.blocks || [];
    else {
      const channel = ui.state.channels.find((c) => c.id === button.dataset.channel);
      const message = channel?.messages.find((m) => m.ts === button.dataset.ts)
        || ui.state.ephemerals.find((e) => e.ts === button.dataset.ts);
      blocks = message?.blocks || [];
    }
    for (const block of blocks) {
      for (const element of [...(block.elements || []), block.accessory, block.element].filter(Boolean)) {
        if (element.action_id === actionId) return element;
      }
    }
    return null;
  }

  function confirmFirst(confirm) {
    if (!confirm) return Promise.resolve(true);
    return new Promise((resolve) => {
      const root = $("#confirm-root");
      const danger = confirm.style === "danger" ? " danger" : "";
      root.innerHTML = `<div class="overlay"><div class="confirm" role="alertdialog" aria-modal="true" aria-label="${esc(plain(confirm.title) || "Are you sure?")}">
        <h3>${esc(plain(confirm.title) || "Are you sure?")}</h3><div>${textObject(confirm.text)}</div>
        <div class="buttons"><button type="button" class="no">${esc(plain(confirm.deny) || "Cancel")}</button>
        <button type="button" class="yes${danger}">${esc(plain(confirm.confirm) || "Yes")}</button></div></div></div>`;
      const done = (answer) => { root.innerHTML = ""; resolve(answer); };
      root.querySelector(".no").onclick = () => done(false);
      root.querySelector(".yes").onclick = () => done(true);
      root.querySelector(".yes").focus();
    });
  }

  async function sendAction(control, extra) {
    const element = findElement(control);
    if (!(await confirmFirst(element?.confirm))) return;
    const body = { user: ui.me, action_id: control.dataset.actionId, ...extra };
    if (control.dataset.view) {
      body.view_id = control.dataset.view;
      body.values = collectViewValues();
    } else {
      body.channel = control.dataset.channel;
      body.ts = control.dataset.ts;
    }
    control.disabled = true;
    try {
      const result = await api("/api/action", body);
      const label = control.tagName === "BUTTON" ? `“${control.textContent.trim()}”` : `${control.dataset.actionId}`;
      const [ok, message] = describeDelivery(`block_actions ${label}`, result);
      showAck(ok, message);
    } finally {
      control.disabled = false;
      scheduleRefresh(0);
    }
  }

  async function submitView(form) {
    const viewId = form.dataset.viewId;
    const submit = form.querySelector("button.submit");
    if (submit) submit.disabled = true;
    try {
      const result = await api("/api/view/submit", { user: ui.me, view_id: viewId, values: collectViewValues() });
      if (result.ok && result.ack?.response_action === "errors") {
        ui.viewErrors = result.ack.errors || {};
        renderViewErrors();
        showAck(false, "view_submission: the bot answered response_action: errors");
        return;
      }
      const [ok, message] = describeDelivery("view_submission", result);
      showAck(ok, message);
    } finally {
      if (submit) submit.disabled = false;
      scheduleRefresh(0);
    }
  }

  function autosize(input) {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }

  function wire() {
    const picker = $("#user-picker");
    picker.innerHTML = CONFIG.users.map((u) => `<option value="${esc(u.id)}"${u.id === ui.me ? " selected" : ""}>@${esc(u.name)} — ${esc(u.real_name)}${u.title ? " (" + esc(u.title) + ")" : ""}</option>`).join("");
    picker.addEventListener("change", () => {
      ui.me = picker.value;
      localStorage.setItem("firebreak.user", ui.me);
      ui.lastHtml = {};
      ui.viewKey = null;
      refresh();
    });

    const examples = [
      "/incident open P1 checkout failing service:api", "/incident ack", "/rollback api",
      "/incident note Error rate back to normal", "/incident status Rolled back; watching error rates",
      "/incident page oncall:backend", "/incident timeline", "/incident resolve Bad deploy rolled back",
      "/incident export md", "/incident open", "/incident help", "/rollback help",
    ];
    $("#examples").innerHTML = examples.map((e) => `<button type="button" class="example" data-example="${esc(e)}">${esc(e)}</button>`).join("");

    const input = $("#composer-input");
    $("#composer").addEventListener("submit", (event) => { event.preventDefault(); send(input.value); });
    input.addEventListener("input", () => autosize(input));
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); send(input.value); return; }
      if (event.key === "ArrowUp" && (input.value === "" || ui.historyAt >= 0) && ui.history.length) {
        ui.historyAt = Math.min(ui.historyAt + 1, ui.history.length - 1);
        input.value = ui.history[ui.historyAt];
        event.preventDefault();
      } else if (event.key === "ArrowDown" && ui.historyAt >= 0) {
        ui.historyAt -= 1;
        input.value = ui.historyAt >= 0 ? ui.history[ui.historyAt] : "";
        event.preventDefault();
      }
    });
    $("#show-health").addEventListener("change", () => { delete ui.lastHtml.requests; renderPanel(); });

    document.addEventListener("click", async (event) => {
      const target = event.target;
      const go = target.closest("[data-goto]");
      if (go) { goTo(go.dataset.goto); return; }
      const channelLink = target.closest(".channel-link[data-channel]");
      if (channelLink && ui.state.channels.some((c) => c.id === channelLink.dataset.channel)) { goTo(channelLink.dataset.channel); return; }
      const example = target.closest("[data-example]");
      if (example) { input.value = example.dataset.example; autosize(input); input.focus(); return; }
      const button = target.closest('[data-action="button"]');
      if (button) {
        if (button.dataset.url) window.open(button.dataset.url, "_blank", "noopener");
        await sendAction(button, button.dataset.value ? { value: button.dataset.value } : {});
        return;
      }
      const toggle = target.closest("[data-thread]");
      if (toggle) {
        const ts = toggle.dataset.thread;
        if (ui.expandedThreads.has(ts)) ui.expandedThreads.delete(ts); else ui.expandedThreads.add(ts);
        renderChannel();
        return;
      }
      const pin = target.closest("[data-pin]");
      if (pin) {
        const result = await api("/api/pin", { user: ui.me, channel: ui.channel, ts: pin.dataset.pin });
        showAck(result.ok, result.ok ? "pinned; the bot got a pin_added event" : result.error);
        scheduleRefresh(0);
        return;
      }
      const react = target.closest("[data-react]");
      if (react) {
        const result = await api("/api/react", { user: ui.me, channel: ui.channel, ts: react.dataset.react, name: "pushpin" });
        showAck(result.ok, result.ok ? "reacted with :pushpin:; the bot got a reaction_added event" : result.error);
        scheduleRefresh(0);
        return;
      }
      const reply = target.closest("[data-reply]");
      if (reply) {
        ui.threadTs = reply.dataset.reply;
        ui.expandedThreads.add(ui.threadTs);
        updateThreadReply();
        renderChannel();
        input.focus();
        return;
      }
      if (target.closest("[data-cancel-thread]")) { ui.threadTs = null; updateThreadReply(); return; }
      const close = target.closest("[data-close-view]");
      if (close) {
        const form = close.closest("form");
        await api("/api/view/close", { user: ui.me, view_id: form.dataset.viewId });
        scheduleRefresh(0);
      }
    });

    document.addEventListener("change", (event) => {
      const select = event.target.closest('[data-action="select"]');
      if (select && select.value) sendAction(select, { selected: select.value });
    });

    document.addEventListener("submit", (event) => {
      const form = event.target.closest("#modal-root form");
      if (form) { event.preventDefault(); submitView(form); }
    });

    document.addEventListener("toggle", (event) => {
      const details = event.target;
      if (details.matches?.("details.req")) {
        const id = Number(details.dataset.request);
        if (details.open) ui.openRequests.add(id); else ui.openRequests.delete(id);
        ui.lastHtml.requests = null;
      }
    }, true);

    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && $("#confirm-root").innerHTML) $("#confirm-root .no")?.click();
    });
  }

  wire();
  refresh().then(connect);
})();
