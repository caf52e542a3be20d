// Self-check questions: turns every ```quiz block of a page into a question
// the reader answers in the page. Runs offline and from file://; the format
// is described at the top of tests/quiz.rs, which proves every answer by
// compiling and running the programs.
(function () {
  "use strict";

  function parse(text) {
    const quiz = { options: [], program: null };
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (line.startsWith("```rust")) {
        const body = [];
        for (i++; i < lines.length && !lines[i].startsWith("```"); i++) {
          body.push(lines[i]);
        }
        quiz.program = body.join("\n");
      } else if (line.startsWith("+ ") || line.startsWith("- ")) {
        quiz.options.push({ text: line.slice(2), right: line[0] === "+" });
      } else {
        const colon = line.indexOf(": ");
        if (colon > 0) {
          quiz[line.slice(0, colon)] = line.slice(colon + 2);
        }
      }
    }
    return quiz;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Text with `inline code`, as in the book's prose, built from text
  // nodes (never innerHTML: the text is shown, not interpreted).
  function prose(tag, className, text) {
    const node = element(tag, className);
    text.split("`").forEach(function (part, index) {
      node.appendChild(
        index % 2 === 1 ? element("code", null, part) : document.createTextNode(part)
      );
    });
    return node;
  }

  const prompts = {
    prints: "What does this program print?",
    possible: "Which of these outputs are possible? Tick every one.",
    compiles: "Does this program compile?",
    concept: "",
  };

  function render(block, number) {
    const quiz = parse(block.textContent);
    const several = quiz.kind === "possible";
    // A group named by its title, so that a screen reader says which
    // question the options and the Check button belong to.
    const box = element("div", "quiz");
    box.setAttribute("role", "group");
    box.setAttribute("aria-labelledby", "quiz-title-" + number);
    const title = element("p", "quiz-title", "Check yourself " + number);
    title.id = "quiz-title-" + number;
    box.appendChild(title);
    if (quiz.question) box.appendChild(prose("p", "quiz-question", quiz.question));
    if (prompts[quiz.kind]) box.appendChild(element("p", "quiz-prompt", prompts[quiz.kind]));
    if (quiz.program !== null) {
      const pre = element("pre");
      const code = element("code", "language-rust", quiz.program);
      pre.appendChild(code);
      box.appendChild(pre);
      // The book's highlight.js has already run; colour this block too.
      if (window.hljs && window.hljs.highlightBlock) {
        window.hljs.highlightBlock(code);
      } else {
        code.classList.add("hljs");
      }
    }
    const inputs = [];
    const name = "quiz-" + number;
    quiz.options.forEach(function (option, index) {
      const label = element("label", "quiz-option");
      const input = element("input");
      input.type = several ? "checkbox" : "radio";
      input.name = name;
      input.value = String(index);
      label.appendChild(input);
      const output = quiz.kind === "prints" || quiz.kind === "possible";
      label.appendChild(
        output ? element("code", null, option.text) : prose("span", null, option.text)
      );
      box.appendChild(label);
      inputs.push(input);
    });
    const check = element("button", "quiz-check", "Check");
    check.type = "button";
    // The verdict is announced when it changes, without moving the focus.
    const verdict = element("p", "quiz-verdict");
    verdict.setAttribute("role", "status");
    const explanation = prose("p", "quiz-explanation", quiz.explain || "");
    explanation.hidden = true;
    let attempts = 0;
    check.addEventListener("click", function () {
      attempts += 1;
      const right = quiz.options.every(function (option, index) {
        return inputs[index].checked === option.right;
      });
      if (right) {
        verdict.textContent = "Right.";
      } else if (attempts < 2) {
        verdict.textContent = several
          ? "Not quite: which outputs can the scheduler produce? Try again."
          : "Not quite. Try again.";
      } else {
        verdict.textContent = "Not quite. The right answer is marked.";
        quiz.options.forEach(function (option, index) {
          if (option.right) inputs[index].parentNode.classList.add("quiz-answer");
        });
      }
      verdict.className = "quiz-verdict " + (right ? "quiz-right" : "quiz-wrong");
      explanation.hidden = !(right || attempts >= 2);
    });
    box.appendChild(check);
    box.appendChild(verdict);
    box.appendChild(explanation);
    const pre = block.closest("pre") || block;
    pre.replaceWith(box);
  }

  function start() {
    const blocks = document.querySelectorAll("code.language-quiz");
    blocks.forEach(function (block, index) {
      render(block, index + 1);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
