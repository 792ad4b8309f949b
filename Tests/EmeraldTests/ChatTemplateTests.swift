import Emerald
import Foundation
import XCTest

/// `ChatTemplate` against transformers' `apply_chat_template` (Fixtures/chat_templates.json,
/// written by scripts/reference/chat_templates.py), and its refusals.
final class ChatTemplateTests: XCTestCase {
    private struct Fixture: Decodable {
        struct Case: Decodable {
            var messages: [[String: String]]
            var add_generation_prompt: Bool
            var text: String
        }
        var name: String
        var cases: [Case]
    }

    func testRenderingsEqualTransformers() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "chat_templates", withExtension: "json", subdirectory: "Fixtures"))
        let data = try Data(contentsOf: url)
        let fixtures = try JSONDecoder().decode([Fixture].self, from: data)
        let configs = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]]).map { $0["tokenizer_config"] as! [String: Any] }
        XCTAssertEqual(fixtures.count, 6)
        let kinds: [String: ChatTemplate.Kind] = ["chatml": .chatML, "smollm2": .chatML, "qwen2": .chatML, "llama2": .llama2,
                                                  "llama3": .llama3, "llama3.1": .llama3]
        for (fixture, config) in zip(fixtures, configs) {
            let template = try ChatTemplate(tokenizerConfig: config)
            XCTAssertEqual(template.kind, kinds[fixture.name], fixture.name)
            for c in fixture.cases {
                let messages = c.messages.map { ChatMessage(role: $0["role"]!, content: $0["content"]!) }
                XCTAssertEqual(try template.render(messages: messages, addGenerationPrompt: c.add_generation_prompt), c.text,
                               "\(fixture.name): \(c.messages)")
            }
        }
    }

    func testDefaultSystemAndEndOfTurn() throws {
        let smol = try ChatTemplate(tokenizerConfig: ["chat_template": "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nBe brief.<|im_end|>\\n' }}{% endif %}<|im_start|>"])
        XCTAssertEqual(smol.defaultSystem, "Be brief.")
        XCTAssertEqual(smol.endOfTurn, "<|im_end|>")
        let generic = try ChatTemplate(tokenizerConfig: ["chat_template": "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'}}"])
        XCTAssertNil(generic.defaultSystem)
        XCTAssertEqual(try ChatTemplate(tokenizerConfig: ["chat_template": "[INST]", "eos_token": ["content": "</s>"]]).endOfTurn, "</s>")
        XCTAssertEqual(try ChatTemplate(tokenizerConfig: ["chat_template": "<|start_header_id|>"]).endOfTurn, "<|eot_id|>")
        // A list of named templates: the default one.
        let named = try ChatTemplate(tokenizerConfig: ["chat_template": [["name": "tool_use", "template": "x"], ["name": "default", "template": "[INST]"]]])
        XCTAssertEqual(named.kind, .llama2)
    }

    func testPlainTemplate() throws {
        XCTAssertEqual(try ChatTemplate(tokenizerConfig: ["bos_token": "<|endoftext|>"]), .plain)
        let text = try ChatTemplate.plain.render(messages: [
            ChatMessage(role: "system", content: "Be kind."), ChatMessage(role: "user", content: "Hi"),
            ChatMessage(role: "assistant", content: "Hello."), ChatMessage(role: "user", content: "Bye"),
        ])
        XCTAssertEqual(text, "System: Be kind.\nUser: Hi\nAssistant: Hello.\nUser: Bye\nAssistant:")
        XCTAssertEqual(ChatTemplate.plain.endOfTurn, "\nUser:")
        XCTAssertEqual(try ChatTemplate.load(folder: TestSupport.tempDir()), .plain, "no tokenizer_config.json")
    }

    func testRefusals() throws {
        XCTAssertThrowsError(try ChatTemplate(tokenizerConfig: ["chat_template": "{% for m in messages %}<start_of_turn>{{ m.content }}{% endfor %}"])) {
            XCTAssertTrue("\($0)".contains("chat template is of a form Emerald does not know"), "\($0)")
            XCTAssertTrue("\($0)".contains("<start_of_turn>"), "names the template: \($0)")
        }
        let llama2 = try ChatTemplate(tokenizerConfig: ["chat_template": "[INST]"])
        XCTAssertThrowsError(try llama2.render(messages: [ChatMessage(role: "assistant", content: "Hi")])) {
            XCTAssertTrue("\($0)".contains("must alternate"), "\($0)")
        }
    }

    /// With a Hugging Face tokenizer (the SmolLM2-configured fixture): the end-of-turn and
    /// end-of-text tokens stop an answer, the rendered turns' markers are read as special
    /// tokens, and a conversation too long for the room drops its oldest turns first.
    func testStopTokensSpecialTokensAndFittingTheContext() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "smollm2", withExtension: "json", subdirectory: "Fixtures/llama_tokenizers"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let tokenizer = try XCTUnwrap(try loadTokenizer(json: json, path: "smollm2.json") as? HuggingFaceBPETokenizer)
        let template = ChatTemplate(kind: .chatML)
        let imEnd = try XCTUnwrap(tokenizer.addedTokens["<|im_end|>"]), imStart = try XCTUnwrap(tokenizer.addedTokens["<|im_start|>"])
        XCTAssertEqual(template.stopTokens(for: tokenizer), [imEnd, try XCTUnwrap(tokenizer.addedTokens["<|endoftext|>"])])
        XCTAssertNil(template.stopString(for: tokenizer))
        XCTAssertEqual(ChatTemplate.plain.stopString(for: tokenizer), "\nUser:")
        var messages = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Who is Dorothy?"),
                        ChatMessage(role: "assistant", content: "A girl from Kansas."), ChatMessage(role: "user", content: "And Toto?")]
        let all = try template.prompt(fitting: &messages, tokenizer: tokenizer, room: 10_000)
        XCTAssertEqual(messages.count, 4)
        XCTAssertEqual(all.filter { $0 == imStart }.count, 5, "four turns and the assistant's opening")
        // Room for the system message and the last question only: the first exchange goes.
        var short = messages
        let lastTwo = try tokenizer.encodeReadingSpecialTokens(try template.render(messages: [messages[0], messages[3]]))
        let fitted = try template.prompt(fitting: &short, tokenizer: tokenizer, room: lastTwo.count)
        XCTAssertEqual(short, [messages[0], messages[3]])
        XCTAssertEqual(fitted, lastTwo)
        var tooLong = messages
        XCTAssertThrowsError(try template.prompt(fitting: &tooLong, tokenizer: tokenizer, room: 3))
    }
}
