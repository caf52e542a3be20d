// A block the compiler refuses is fenced `compile_fail,E0373`, without
// `rust`: skeptic would otherwise try to run it (tests/book.rs). mdBook
// then gives its <code> the class `language-compile_fail`, which
// highlight.js does not know, so the block would be shown in one colour.
// This runs after book.js (scripts marked `defer` run in order) and
// colours those blocks as Rust, keeping their classes.
(function () {
  'use strict';
  if (typeof hljs === 'undefined') {
    return;
  }
  const blocks = document.querySelectorAll(
    'code[class*="language-compile_fail"]'
  );
  for (const block of blocks) {
    const source = block.textContent;
    block.innerHTML = hljs.highlight('rust', source, true).value;
    block.classList.add('hljs', 'refused');
  }
})();
