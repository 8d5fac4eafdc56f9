//! Finding elements as a person names them (by label, by role and name, by
//! id), waiting until exactly one matches, and acting on them.

use fantoccini::elements::{Element, ElementRef};
use serde_json::json;

use super::Profile;

/// The script that finds (see its header for what a name is).
const FIND: &str = include_str!("find.js");

/// The key WebDriver gives element references under in script results.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Profile {
    /// The form control labelled `label` (a `<label>`, `aria-label` or
    /// `aria-labelledby`), once exactly one is on the page.
    pub async fn by_label(&self, label: &str) -> Element {
        self.find_one("label", label, &format!("the control labelled {label:?}")).await
    }

    /// The element of ARIA role `role` (explicit, or implied by its tag:
    /// `button`, `link`, `heading`, `textbox`, `combobox`, `checkbox`, `row`,
    /// `dialog`, …) named `name`, once exactly one is on the page.
    pub async fn by_role(&self, role: &str, name: &str) -> Element {
        self.find_one(role, name, &format!("the {role} named {name:?}")).await
    }

    /// The element with id `id`, once it is on the page.
    pub async fn by_id(&self, id: &str) -> Element {
        let selector = self.execute("return '#' + CSS.escape(arguments[0])", vec![json!(id)]).await;
        self.by_css(selector.as_str().expect("a selector")).await
    }

    /// The one element `selector` matches, once exactly one does.
    pub async fn by_css(&self, selector: &str) -> Element {
        self.find_one("css", selector, &format!("the element {selector:?}")).await
    }

    /// Whether a rendered element of `role` named `name` is on the page now (no waiting).
    pub async fn has_role(&self, role: &str, name: &str) -> bool {
        !self.matches(role, name).await.is_empty()
    }

    /// Types `value` into the control labelled `label`, replacing what it held.
    pub async fn fill(&self, label: &str, value: &str) {
        let control = self.by_label(label).await;
        self.act(&format!("fill {label:?}"), async {
            control.clear().await?;
            control.send_keys(value).await
        })
        .await;
    }

    /// Chooses the option shown as `option` in the select labelled `label`.
    pub async fn select(&self, label: &str, option: &str) {
        let control = self.by_label(label).await;
        self.act(&format!("choose {option:?} in {label:?}"), control.select_by_label(option)).await;
    }

    /// Clicks the element of `role` named `name` (e.g. `("button", "Save")`).
    pub async fn click(&self, role: &str, name: &str) {
        let element = self.by_role(role, name).await;
        self.act(&format!("click the {role} {name:?}"), element.click()).await;
    }

    /// The rendered text of `element`.
    pub async fn text(&self, element: &Element) -> String {
        self.act("read an element's text", element.text()).await
    }

    /// Runs a WebDriver action, failing the step (with a screenshot) if it errs.
    async fn act<T>(&self, what: &str, action: impl Future<Output = Result<T, fantoccini::error::CmdError>>) -> T {
        match action.await {
            Ok(value) => value,
            Err(error) => self.fail(&format!("cannot {what}: {error}")).await,
        }
    }

    async fn find_one(&self, how: &str, wanted: &str, what: &str) -> Element {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        loop {
            let problem = match self.matches_or_error(how, wanted).await {
                Ok(mut matches) if matches.len() == 1 => return matches.pop().expect("one match"),
                Ok(matches) if matches.is_empty() => format!("{what} never appeared within {:?}", super::WAIT),
                Ok(matches) => format!("{what} is ambiguous: {} elements match", matches.len()),
                Err(error) => format!("cannot look for {what}: {error}"),
            };
            if tokio::time::Instant::now() >= deadline {
                self.fail(&problem).await;
            }
            tokio::time::sleep(super::POLL).await;
        }
    }

    async fn matches(&self, how: &str, wanted: &str) -> Vec<Element> {
        self.matches_or_error(how, wanted).await.unwrap_or_default()
    }

    /// The elements that match now; an error while the page changes document, say.
    async fn matches_or_error(&self, how: &str, wanted: &str) -> Result<Vec<Element>, fantoccini::error::CmdError> {
        let answer = self.client.execute(FIND, vec![json!(how), json!(wanted)]).await?;
        let references = answer.as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(references
            .iter()
            .filter_map(|reference| reference[ELEMENT_KEY].as_str())
            .map(|id| Element::from_element_id(self.client.clone(), ElementRef::from(id.to_owned())))
            .collect())
    }
}
