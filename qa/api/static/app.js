// qa page: ask, see the answer in its passage, open the document at that place.
// Every piece of text from the server or the user is inserted as text (textContent, text
// nodes), never as HTML. No inline code: the Content-Security-Policy forbids it.
"use strict";

(() => {
  const STRINGS = {
    en: {
      title: "Ask the documents",
      lede: "Answers are sentences copied from the documents, with the passages they come from.",
      skip: "Skip to the answer",
      question: "Your question",
      placeholder: "When did Lavrov visit North Korea?",
      ask: "Ask",
      filters: "Filters",
      documents: "Documents",
      documentsHint: "None ticked: search them all.",
      dates: "Dates",
      dateFrom: "From",
      dateTo: "To",
      passages: "Passages",
      k: "Number of passages",
      answer: "Answer",
      close: "Close the document",
      legendCited: "cited passage",
      legendAnswer: "answer",
      docText: "Document text",
      keyTitle: "API key",
      keyText: "This server needs its API key. It is kept in this tab only and sent in a header, never in the address.",
      keyLabel: "Key",
      keySubmit: "Use this key",
      keyWrong: "That key was refused. Check it and try again.",
      asking: "Looking in the documents…",
      loadingDoc: "Opening the document…",
      answered: (n) => `Answer found, with ${n} passage${n === 1 ? "" : "s"}.`,
      notFound: "Not found in these documents",
      notFoundText: "No sentence of the documents answers this question well enough. The passages below are the closest ones; they do not answer it.",
      closest: "Closest passages — they do not answer the question",
      sources: "Sources",
      notAnswer: "does not answer",
      citation: (n) => `Passage ${n}`,
      open: "open the document",
      page: (p) => `p. ${p}`,
      chars: (s, e) => `characters ${s}–${e}`,
      confidence: (c) => `confidence ${c}`,
      from: "from",
      emptyQuestion: "Type a question first.",
      unreachable: "The server cannot be reached. Check that “qa serve” is running, then try again.",
      serverError: (status, detail) => `The server answered ${status}: ${detail}`,
      noDocuments: "No documents are indexed.",
      docGone: "This answer came from an earlier version of the index that is no longer kept. Ask the question again.",
    },
    fr: {
      title: "Interroger les documents",
      lede: "Les réponses sont des phrases copiées des documents, avec les passages d’où elles viennent.",
      skip: "Aller à la réponse",
      question: "Votre question",
      placeholder: "Quand Lavrov s’est-il rendu en Corée du Nord ?",
      ask: "Demander",
      filters: "Filtres",
      documents: "Documents",
      documentsHint: "Aucun coché : chercher dans tous.",
      dates: "Dates",
      dateFrom: "Du",
      dateTo: "Au",
      passages: "Passages",
      k: "Nombre de passages",
      answer: "Réponse",
      close: "Fermer le document",
      legendCited: "passage cité",
      legendAnswer: "réponse",
      docText: "Texte du document",
      keyTitle: "Clé d’API",
      keyText: "Ce serveur demande sa clé d’API. Elle reste dans cet onglet et part dans un en-tête, jamais dans l’adresse.",
      keyLabel: "Clé",
      keySubmit: "Utiliser cette clé",
      keyWrong: "Cette clé a été refusée. Vérifiez-la et réessayez.",
      asking: "Recherche dans les documents…",
      loadingDoc: "Ouverture du document…",
      answered: (n) => `Réponse trouvée, avec ${n} passage${n === 1 ? "" : "s"}.`,
      notFound: "Introuvable dans ces documents",
      notFoundText: "Aucune phrase des documents ne répond assez bien à cette question. Les passages ci-dessous sont les plus proches ; ils n’y répondent pas.",
      closest: "Passages les plus proches — ils ne répondent pas à la question",
      sources: "Sources",
      notAnswer: "ne répond pas",
      citation: (n) => `Passage ${n}`,
      open: "ouvrir le document",
      page: (p) => `p. ${p}`,
      chars: (s, e) => `caractères ${s}–${e}`,
      confidence: (c) => `confiance ${c}`,
      from: "de",
      emptyQuestion: "Tapez d’abord une question.",
      unreachable: "Le serveur est injoignable. Vérifiez que « qa serve » tourne, puis réessayez.",
      serverError: (status, detail) => `Le serveur a répondu ${status} : ${detail}`,
      noDocuments: "Aucun document n’est indexé.",
      docGone: "Cette réponse venait d’une version de l’index qui n’est plus conservée. Posez à nouveau la question.",
    },
  };

  const browserLanguages = navigator.languages && navigator.languages.length
    ? navigator.languages : [navigator.language || "en"];
  const LANG = String(browserLanguages[0]).toLowerCase().startsWith("fr") ? "fr" : "en";
  const T = STRINGS[LANG];
  const KEY_STORAGE = "qa-api-key";

  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, children = []) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child);  // strings become text nodes
    return node;
  };

  const state = {
    documents: new Map(),   // doc_id -> {title, date, length}
    result: null,           // the last /ask result
    openButton: null,       // the citation button that opened the document
    asking: 0,              // request counter: only the latest answer is shown
  };

  // ------------------------------------------------------------------ language

  function applyLanguage() {
    document.documentElement.lang = LANG;
    document.title = T.title;
    for (const node of document.querySelectorAll("[data-i18n]")) {
      const value = T[node.dataset.i18n];
      if (typeof value === "string") node.textContent = value;
    }
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
      node.placeholder = T[node.dataset.i18nPlaceholder];
    }
    for (const node of document.querySelectorAll("[data-i18n-aria-label]")) {
      node.setAttribute("aria-label", T[node.dataset.i18nAriaLabel]);
    }
  }

  function formatDate(date) {
    if (!date) return "";
    const parts = String(date).split("-").map(Number);
    if (parts.some(Number.isNaN)) return String(date);
    try {
      if (parts.length === 2) {
        return new Intl.DateTimeFormat(LANG, { year: "numeric", month: "long", timeZone: "UTC" })
          .format(Date.UTC(parts[0], parts[1] - 1, 1));
      }
      if (parts.length === 3) {
        return new Intl.DateTimeFormat(LANG, { dateStyle: "long", timeZone: "UTC" })
          .format(Date.UTC(parts[0], parts[1] - 1, parts[2]));
      }
    } catch (_) { /* an odd date: show it as stored */ }
    return String(date);
  }

  // ------------------------------------------------------------------ messages

  function setStatus(text) { $("status").textContent = text || ""; }

  function showError(text) {
    const box = $("error");
    box.textContent = text;
    box.hidden = !text;
  }

  function detailOf(body) {
    if (!body || body.detail === undefined) return "";
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail) && body.detail.length) {
      const first = body.detail[0];
      const where = Array.isArray(first.loc) ? first.loc.filter((p) => p !== "body").join(".") : "";
      return (where ? `${where}: ` : "") + (first.msg || JSON.stringify(first));
    }
    return JSON.stringify(body.detail);
  }

  // ------------------------------------------------------------------ the API key

  function storedKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch (_) { return ""; }
  }

  let keyWaiters = null;

  // Ask the user for the key (once: concurrent callers share the same prompt).
  function promptKey(refused) {
    if (keyWaiters) return keyWaiters.promise;
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    keyWaiters = { promise, resolve };
    const dialog = $("key-dialog");
    const error = $("key-error");
    error.textContent = refused ? T.keyWrong : "";
    error.hidden = !refused;
    $("key-input").value = "";
    if (!dialog.open) dialog.showModal();
    $("key-input").focus();
    return promise;
  }

  function setupKeyDialog() {
    const dialog = $("key-dialog");
    $("key-form").addEventListener("submit", (event) => {
      const key = $("key-input").value.trim();
      if (!key) { event.preventDefault(); return; }
      try { sessionStorage.setItem(KEY_STORAGE, key); } catch (_) { /* private mode */ }
    });
    dialog.addEventListener("close", () => {
      const waiters = keyWaiters;
      keyWaiters = null;
      if (waiters) waiters.resolve(storedKey());
    });
    dialog.addEventListener("cancel", (event) => event.preventDefault());  // the key is needed
  }

  // fetch with the key in the Authorization header; on 401, ask for the key and retry.
  async function api(path, options = {}, attempt = 0) {
    const headers = new Headers(options.headers || {});
    const key = storedKey();
    if (key) headers.set("Authorization", `Bearer ${key}`);
    let response;
    try {
      response = await fetch(path, { ...options, headers, cache: "no-store" });
    } catch (_) {
      const error = new Error(T.unreachable);
      error.unreachable = true;
      throw error;
    }
    if (response.status === 401 && attempt < 5) {
      try { sessionStorage.removeItem(KEY_STORAGE); } catch (_) { /* ignore */ }
      await promptKey(Boolean(key));
      return api(path, options, attempt + 1);
    }
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const error = new Error(T.serverError(response.status, detailOf(body) || response.statusText));
      error.status = response.status;
      throw error;
    }
    return body;
  }

  const documentPath = (docId) => "/documents/" + String(docId).split("/").map(encodeURIComponent).join("/");

  // ------------------------------------------------------------------ documents and filters

  async function loadDocuments() {
    const docs = await api("/documents");
    state.documents.clear();
    const list = $("doc-list");
    list.replaceChildren();
    if (!docs.length) list.append(el("p", { class: "hint", text: T.noDocuments }));
    for (const d of docs) {
      state.documents.set(d.doc_id, d);
      const box = el("input", { type: "checkbox", value: d.doc_id, name: "doc" });
      const label = el("label", {}, [box, el("span", { text: d.title || d.doc_id })]);
      if (d.date) label.append(el("span", { class: "date", text: formatDate(d.date) }));
      list.append(label);
    }
    syncFiltersFromUrl();
  }

  function chosenDocIds() {
    return [...document.querySelectorAll("#doc-list input:checked")].map((b) => b.value);
  }

  function readForm() {
    const k = Number.parseInt($("k").value, 10);
    return {
      question: $("q").value,
      k: Number.isInteger(k) && k >= 1 && k <= 50 ? k : 5,
      doc_ids: chosenDocIds(),
      date_from: $("date-from").value || null,
      date_to: $("date-to").value || null,
    };
  }

  function urlFor(form) {
    const params = new URLSearchParams();
    params.set("q", form.question);
    if (form.k !== 5) params.set("k", String(form.k));
    for (const id of form.doc_ids) params.append("doc", id);
    if (form.date_from) params.set("from", form.date_from);
    if (form.date_to) params.set("to", form.date_to);
    return "/?" + params.toString();
  }

  function syncFiltersFromUrl() {
    const params = new URLSearchParams(location.search);
    const docs = new Set(params.getAll("doc"));
    for (const box of document.querySelectorAll("#doc-list input")) box.checked = docs.has(box.value);
    if (docs.size || params.get("from") || params.get("to") || params.get("k")) $("filters").open = true;
  }

  function syncFormFromUrl() {
    const params = new URLSearchParams(location.search);
    $("q").value = params.get("q") || "";
    $("k").value = params.get("k") || "5";
    $("date-from").value = params.get("from") || "";
    $("date-to").value = params.get("to") || "";
    syncFiltersFromUrl();
    return params.get("q");
  }

  // ------------------------------------------------------------------ highlighting

  // Append text[from:to] (offsets in document coordinates; text starts at `base`) to parent,
  // wrapping the given ranges in <mark class=...>. Ranges nest (short answer inside the
  // answer inside the cited passage) and are clipped to [from, to).
  function appendHighlighted(parent, text, base, from, to, ranges) {
    const inside = ranges
      .map((r) => ({ ...r, start: Math.max(r.start, from), end: Math.min(r.end, to) }))
      .filter((r) => r.start < r.end)
      .sort((a, b) => a.start - b.start || (b.end - b.start) - (a.end - a.start));
    let at = from;
    let i = 0;
    while (i < inside.length) {
      const r = inside[i];
      if (r.start < at) { i += 1; continue; }  // overlaps one already drawn: skip
      if (r.start > at) parent.append(text.slice(at - base, r.start - base));
      const mark = el("mark", { class: r.cls });
      if (r.id) mark.id = r.id;
      const nested = inside.filter((o) => o !== r && o.start >= r.start && o.end <= r.end);
      appendHighlighted(mark, text, base, r.start, r.end, nested);
      parent.append(mark);
      at = r.end;
      i += 1;
    }
    if (at < to) parent.append(text.slice(at - base, to - base));
  }

  function answerRanges(result, docId) {
    const ranges = [];
    const span = result && result.answer_span;
    if (span && span.doc_id === docId) ranges.push({ start: span.start, end: span.end, cls: "answer" });
    const short = result && result.short_answer;
    if (short && short.doc_id === docId && Number.isInteger(short.start) && short.end > short.start) {
      ranges.push({ start: short.start, end: short.end, cls: "short" });
    }
    return ranges;
  }

  // ------------------------------------------------------------------ rendering a result

  function sourceLine(docId, page) {
    const info = state.documents.get(docId);
    const parts = [info && info.title ? info.title : docId];
    if (info && info.date) parts.push(formatDate(info.date));
    if (page !== undefined && page !== null) parts.push(T.page(page));
    return parts.join(" · ");
  }

  function renderCitation(result, c, abstained) {
    const info = state.documents.get(c.doc_id);
    const head = el("button", {
      type: "button", class: "citation-head",
      "aria-describedby": `passage-${c.rank}`,
    }, [
      el("span", { class: "num", "aria-hidden": "true", text: String(c.rank) }),
      el("span", { class: "visually-hidden", text: T.citation(c.rank) + ", " + T.open + ": " }),
      el("span", { class: "citation-title", text: info && info.title ? info.title : c.doc_id }),
    ]);
    const meta = [];
    if (info && info.date) meta.push(formatDate(info.date));
    if (c.page !== undefined && c.page !== null) meta.push(T.page(c.page));
    meta.push(T.chars(c.start, c.end));
    head.append(el("span", { class: "meta", text: meta.join(" · ") }));
    if (abstained) head.append(el("span", { class: "badge", text: T.notAnswer }));
    head.addEventListener("click", () => openDocument(c, head));

    const passage = el("p", { class: "passage", id: `passage-${c.rank}` });
    appendHighlighted(passage, c.text, c.start, c.start, c.end, answerRanges(result, c.doc_id));
    // The passage's section (its heading path), above it, as text like everything else.
    const parts = c.section ? [head, el("p", { class: "section", text: c.section }), passage]
      : [head, passage];
    return el("li", { class: "citation" + (abstained ? " not-answer" : ""), "data-rank": String(c.rank) },
      parts);
  }

  function renderResult(result) {
    state.result = result;
    const answer = $("answer");
    answer.replaceChildren(el("p", { class: "asked", id: "asked" }, [
      el("span", { class: "visually-hidden", text: T.question + " : " }), result.question]));
    if (result.abstained) {
      answer.append(el("div", { class: "not-found", id: "not-found" }, [
        el("h2", { text: T.notFound }),
        el("p", { text: T.notFoundText }),
      ]));
    } else {
      const short = result.short_answer;
      if (short && short.text) {
        answer.append(el("p", { class: "short-answer", id: "short-answer", text: short.text }));
      }
      const span = result.answer_span;
      const cited = result.citations.find((c) => span && c.doc_id === span.doc_id
        && c.start <= span.start && span.end <= c.end);
      answer.append(el("blockquote", { class: "answer-sentence", id: "answer-sentence", text: result.answer }));
      const source = [T.from + " " + sourceLine(span.doc_id, cited ? cited.page : undefined)];
      if (span.section) source.push(span.section);
      source.push(T.confidence(Number(result.confidence).toFixed(2)));
      answer.append(el("p", { class: "source", text: source.join(" · ") }));
    }
    $("citations-heading").textContent = result.abstained ? T.closest : T.sources;
    const list = $("citations");
    list.replaceChildren(...result.citations.map((c) => renderCitation(result, c, result.abstained)));
    $("results").hidden = false;
  }

  // ------------------------------------------------------------------ the document

  async function openDocument(citation, button) {
    const result = state.result;
    state.openButton = button;
    showError("");
    setStatus(T.loadingDoc);
    let doc;
    try {
      const generation = result && result.generation ? `?generation=${encodeURIComponent(result.generation)}` : "";
      doc = await api(documentPath(citation.doc_id) + generation);
    } catch (error) {
      setStatus("");
      showError(error.status === 410 ? T.docGone : error.message);
      return;
    }
    setStatus("");
    $("doc-title").textContent = doc.title || doc.doc_id;
    const meta = [doc.doc_id];
    if (doc.date) meta.push(formatDate(doc.date));
    if (citation.page !== undefined && citation.page !== null) meta.push(T.page(citation.page));
    if (citation.section) meta.push(citation.section);
    meta.push(T.chars(citation.start, citation.end));
    $("doc-meta").textContent = meta.join(" · ");

    const ranges = [{ start: citation.start, end: citation.end, cls: "cited", id: "cited-range" },
      ...answerRanges(result, doc.doc_id)];
    const answer = ranges.find((r) => r.cls === "answer");
    if (answer) answer.id = "doc-answer";
    const text = $("doc-text");
    text.replaceChildren();
    appendHighlighted(text, doc.text, 0, 0, doc.text.length, ranges);

    $("document").hidden = false;
    document.querySelector(".panes").classList.add("with-document");
    for (const item of document.querySelectorAll(".citation")) item.classList.remove("open");
    button.closest(".citation").classList.add("open");
    // The answer if it is in this passage's document, else the cited range: in view, centred.
    const target = $("doc-answer") || $("cited-range");
    $("doc-title").focus({ preventScroll: true });
    const pane = $("document").getBoundingClientRect();
    if (pane.top < 0 || pane.bottom > window.innerHeight) $("document").scrollIntoView({ block: "start" });
    if (target) {  // scroll the text box, not the page, to put the mark a third of the way down
      const box = $("doc-text");
      const offset = target.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
      box.scrollTop = Math.max(0, offset - box.clientHeight / 3);
      target.scrollIntoView({ block: "nearest" });  // and the page, if the mark is still below
    }
  }

  function closeDocument() {
    $("document").hidden = true;
    document.querySelector(".panes").classList.remove("with-document");
    if (state.openButton && document.contains(state.openButton)) state.openButton.focus();
  }

  // ------------------------------------------------------------------ asking

  async function ask(form, { push }) {
    showError("");
    if (!form.question.trim()) {
      showError(T.emptyQuestion);
      $("q").focus();
      return;
    }
    const url = urlFor(form);
    if (push && location.pathname + location.search !== url) history.pushState(null, "", url);
    else if (!push) history.replaceState(null, "", url);
    const ticket = ++state.asking;
    const button = $("ask-button");
    button.disabled = true;
    setStatus(T.asking);
    const body = { question: form.question, k: form.k };
    if (form.doc_ids.length) body.doc_ids = form.doc_ids;
    if (form.date_from) body.date_from = form.date_from;
    if (form.date_to) body.date_to = form.date_to;
    try {
      if (!state.documents.size) await loadDocuments().catch(() => {});
      const result = await api("/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (ticket !== state.asking) return;
      closeDocument();
      renderResult(result);
      setStatus(result.abstained ? T.notFound : T.answered(result.citations.length));
    } catch (error) {
      if (ticket !== state.asking) return;
      setStatus("");
      // The answer on screen is for another question: do not leave it under this error.
      closeDocument();
      $("results").hidden = true;
      showError(error.message);
    } finally {
      if (ticket === state.asking) button.disabled = false;
    }
  }

  function init() {
    applyLanguage();
    setupKeyDialog();
    $("ask-form").addEventListener("submit", (event) => {
      event.preventDefault();
      ask(readForm(), { push: true });
    });
    $("doc-close").addEventListener("click", closeDocument);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !$("document").hidden && !$("key-dialog").open) closeDocument();
    });
    window.addEventListener("popstate", () => {
      const q = syncFormFromUrl();
      if (q) ask(readForm(), { push: false });
    });
    const q = syncFormFromUrl();
    loadDocuments()
      .then(() => { if (q) ask(readForm(), { push: false }); })
      .catch((error) => {
        showError(error.message);
        if (q) ask(readForm(), { push: false });
      });
    if (!q) $("q").focus();
  }

  // For the browser tests: render a result object as /ask returned it (fields other work adds,
  // such as short_answer and page, included).
  window.qaPage = Object.freeze({ renderResult });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
