// The language switcher: in the header and on the sign-in page; the choice is remembered in this browser.
import { GlobalOutlined } from "@ant-design/icons";
import { Select } from "antd";
import { useTranslation } from "react-i18next";
import { chooseLanguage, LANGUAGES, type Language } from "../i18n";

export const LANGUAGE_NAMES: Record<Language, string> = { "en-US": "English", "zh-CN": "简体中文" }; // each in its own language

export function LanguageSwitch() {
  const { t, i18n } = useTranslation();
  return (
    <Select<Language>
      aria-label={t("common.language")}
      data-testid="language"
      className="language-switch"
      value={i18n.language as Language}
      onChange={chooseLanguage}
      suffixIcon={<GlobalOutlined />}
      options={LANGUAGES.map((language) => ({ value: language, label: LANGUAGE_NAMES[language] }))}
      popupMatchSelectWidth={false}
      variant="borderless"
    />
  );
}
